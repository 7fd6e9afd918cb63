//! One kind of view, cached in two layers: the in-process L1, then the shared L2, then the
//! read model, every hit validated by the rule in the crate documentation.
use std::{future::Future, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    config::LocalConfig,
    shared::{Local, SharedViews, Stored},
};

/// A view with what it is valid for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<V> {
    /// The view's stream version.
    pub version: u64,
    /// The projection checkpoint read before the view was rendered: the view is at least as
    /// new as the read model at this checkpoint.
    pub as_of: u64,
    /// The view.
    pub view: V,
}

/// Where a view came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This process's L1.
    Local,
    /// The shared L2 (Redis).
    Shared,
    /// The read model (a miss in every layer, or a stale entry).
    ReadModel,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
            Self::ReadModel => "read_model",
        }
    }
}

/// What [`ViewCache::get`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched<V> {
    /// The view (`None`: the read model has no such view).
    pub view: Option<V>,
    /// Where it came from.
    pub source: Source,
}

type LocalMap<V> = moka::sync::Cache<String, Arc<Entry<V>>>;

/// An L1 as invalidation messages see it.
struct LocalViews<V>(LocalMap<V>);

impl<V: Send + Sync + 'static> Local for LocalViews<V> {
    fn evict(&self, id: &str) {
        self.0.invalidate(id);
    }

    fn clear(&self) {
        self.0.invalidate_all();
    }
}

/// The cache of one kind of view (`product`, `order`): cheap to clone, clones share it.
#[derive(Clone)]
pub struct ViewCache<V> {
    kind: &'static str,
    local: LocalMap<V>,
    shared: Option<SharedViews>,
}

impl<V> std::fmt::Debug for ViewCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCache")
            .field("kind", &self.kind)
            .field("local_entries", &self.local.entry_count())
            .field("shared", &self.shared)
            .finish()
    }
}

impl<V> ViewCache<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// An L1-only cache of views of `kind` (the embedded mode).
    pub fn new(kind: &'static str, config: &LocalConfig) -> Self {
        Self {
            kind,
            local: moka::sync::Cache::builder()
                .max_capacity(config.capacity)
                .time_to_live(config.ttl)
                .build(),
            shared: None,
        }
    }

    /// The same cache with `shared` as its L2; its L1 now obeys `shared`'s invalidations
    /// (the first L1 registered starts `shared`'s listener task: call it inside a tokio
    /// runtime).
    #[must_use]
    pub fn with_shared(mut self, shared: SharedViews) -> Self {
        shared.register(self.kind, Arc::new(LocalViews(self.local.clone())));
        self.shared = Some(shared);
        self
    }

    /// The kind of view (`product`, `order`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The L2, if there is one.
    pub fn shared(&self) -> Option<&SharedViews> {
        self.shared.as_ref()
    }

    /// Whether the L1 holds view `id` (for tests and diagnostics).
    pub fn contains_local(&self, id: &str) -> bool {
        self.local.contains_key(id)
    }

    /// Drops view `id` from the L1.
    pub fn evict_local(&self, id: &str) {
        self.local.invalidate(id);
    }

    /// Empties the L1 (the L2 is [`SharedViews::purge`]d separately).
    pub fn clear_local(&self) {
        self.local.invalidate_all();
    }

    /// View `id`, valid at checkpoint `as_of` (read by the caller *before* this call):
    /// from the L1 or the L2 when an entry is valid there, else from `load`.
    ///
    /// An entry is valid when its `as_of` equals `as_of`, or when `stored_version` (the
    /// version the read model holds now; called at most once) equals its version. A view
    /// `load`ed from the read model is put in the L1 and, by compare-and-set, in the L2.
    /// Redis failures are never returned: the read model answers instead.
    ///
    /// # Errors
    /// What `stored_version` or `load` fail with.
    pub async fn get<E, VF, VFut, LF, LFut>(
        &self,
        id: &str,
        as_of: u64,
        stored_version: VF,
        load: LF,
    ) -> Result<Fetched<V>, E>
    where
        VF: Fn() -> VFut,
        VFut: Future<Output = Result<Option<u64>, E>>,
        LF: FnOnce() -> LFut,
        LFut: Future<Output = Result<Option<(u64, V)>, E>>,
    {
        let mut known_version: Option<Option<u64>> = None;
        if let Some(hit) = self.local.get(id) {
            if hit.as_of == as_of {
                return Ok(self.found(hit.view.clone(), Source::Local));
            }
            let version = stored_version().await?;
            known_version = Some(version);
            if version == Some(hit.version) {
                self.remember(id, hit.version, as_of, hit.view.clone());
                return Ok(self.found(hit.view.clone(), Source::Local));
            }
            self.local.invalidate(id);
        }
        if let Some(entry) = self.shared_entry(id).await {
            let valid = entry.as_of == as_of
                || match known_version {
                    Some(version) => version == Some(entry.version),
                    None => stored_version().await? == Some(entry.version),
                };
            if valid {
                self.remember(id, entry.version, as_of, entry.view.clone());
                return Ok(self.found(entry.view, Source::Shared));
            }
        }
        let Some((version, view)) = load().await? else {
            self.local.invalidate(id);
            return Ok(Fetched {
                view: None,
                source: Source::ReadModel,
            });
        };
        self.remember(id, version, as_of, view.clone());
        if let Some(shared) = &self.shared {
            match serde_json::to_string(&view) {
                // A failure is recorded by the L2's health; the answer does not depend on it.
                Ok(json) => {
                    let stored = Stored {
                        version,
                        as_of,
                        view: json,
                    };
                    let _ = shared.put(self.kind, id, stored).await;
                }
                Err(err) => {
                    tracing::error!(kind = self.kind, %id, %err, "a view does not serialise")
                }
            }
        }
        Ok(self.found(view, Source::ReadModel))
    }

    /// The L2's entry of `id`, decoded (`None`: no L2, absent, undecodable, or Redis failed).
    async fn shared_entry(&self, id: &str) -> Option<Entry<V>> {
        let stored = self.shared.as_ref()?.get(self.kind, id).await.ok()??;
        match serde_json::from_str(&stored.view) {
            Ok(view) => Some(Entry {
                version: stored.version,
                as_of: stored.as_of,
                view,
            }),
            Err(err) => {
                tracing::warn!(kind = self.kind, %id, %err, "an undecodable view in Redis is ignored");
                None
            }
        }
    }

    fn remember(&self, id: &str, version: u64, as_of: u64, view: V) {
        self.local.insert(
            id.to_owned(),
            Arc::new(Entry {
                version,
                as_of,
                view,
            }),
        );
    }

    fn found(&self, view: V, source: Source) -> Fetched<V> {
        metrics::counter!("emporium_view_cache_lookups_total", "kind" => self.kind, "source" => source.label())
            .increment(1);
        Fetched {
            view: Some(view),
            source,
        }
    }
}
