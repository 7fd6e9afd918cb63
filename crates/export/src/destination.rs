//! Where the export writes: a local folder or `s3://bucket/prefix`, both behind
//! `object_store`, so one code path (and one set of guarantees) serves both.
//!
//! - A folder: `LocalFileSystem` with fsync on. Each object is written to a staging file
//!   beside it (`part-0.parquet#N`), fsynced, renamed into place and its folder fsynced: a
//!   reader sees the old file or the new one, never a partial one, even across a crash.
//! - S3 (and S3-compatible servers): `AmazonS3` configured from the `AWS_*` environment
//!   variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
//!   `AWS_ALLOW_HTTP`, …). A PUT, and the completion of a multipart upload, replace an object
//!   atomically.
use std::{collections::BTreeSet, sync::Arc};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::{
    ObjectStore, ObjectStoreExt, aws::AmazonS3Builder, local::LocalFileSystem, path::Path,
};

use crate::days::{day_name, parse_day};

/// The two datasets, each a folder of day partitions under the destination's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// `orders/`
    Orders,
    /// `order_lines/`
    OrderLines,
}

impl Dataset {
    /// Both, in the order they are written (lines first: see `crate::write`).
    pub const ALL: [Dataset; 2] = [Dataset::OrderLines, Dataset::Orders];

    /// The dataset's folder name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Orders => "orders",
            Dataset::OrderLines => "order_lines",
        }
    }
}

/// The one file of a day partition: deterministic, so that a re-run overwrites it.
pub const PART_FILE: &str = "part-0.parquet";

/// An opened destination.
#[derive(Clone, Debug)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    root: Path,
    display: String,
}

impl Destination {
    /// Opens `out`: `s3://bucket[/prefix]`, or else a local folder (created if missing).
    ///
    /// # Errors
    /// An unsupported scheme, a bad bucket or prefix, a folder that cannot be created, or
    /// S3 settings `object_store` refuses.
    pub fn open(out: &str) -> anyhow::Result<Self> {
        if let Some(rest) = out.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("{out:?}: the S3 destination needs a bucket (s3://bucket/prefix)");
            }
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("configuring S3 for {out}"))?;
            let root = Path::parse(prefix.trim_matches('/'))
                .with_context(|| format!("{out:?}: bad S3 prefix"))?;
            return Ok(Self {
                store: Arc::new(store),
                root,
                display: out.trim_end_matches('/').to_owned(),
            });
        }
        if let Some((scheme, _)) = out.split_once("://") {
            bail!(
                "{out:?}: unsupported destination {scheme}://; use a folder or s3://bucket/prefix"
            );
        }
        if out.is_empty() {
            bail!("--out must name a folder or s3://bucket/prefix");
        }
        std::fs::create_dir_all(out).with_context(|| format!("creating {out}"))?;
        let store = LocalFileSystem::new_with_prefix(out)
            .with_context(|| format!("opening {out}"))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            root: Path::default(),
            display: out.to_owned(),
        })
    }

    /// Over an already configured store, under `root` (tests and embedding).
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, display: impl Into<String>) -> Self {
        Self {
            store,
            root,
            display: display.into(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// How to name it to a person.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `<root>/<dataset>/date=YYYY-MM-DD`.
    pub fn partition(&self, dataset: Dataset, day: NaiveDate) -> Path {
        self.root
            .clone()
            .join(dataset.name())
            .join(format!("date={}", day_name(day)).as_str())
    }

    /// `<root>/<dataset>/date=YYYY-MM-DD/part-0.parquet`.
    pub fn part_file(&self, dataset: Dataset, day: NaiveDate) -> Path {
        self.partition(dataset, day).join(PART_FILE)
    }

    /// The days that have a partition folder in `dataset` (other entries are ignored).
    ///
    /// # Errors
    /// When the store cannot be listed.
    pub async fn partition_days(&self, dataset: Dataset) -> anyhow::Result<BTreeSet<NaiveDate>> {
        let prefix = self.root.clone().join(dataset.name());
        let listing = match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(BTreeSet::new()),
            Err(err) => {
                return Err(err).with_context(|| format!("listing {}/{prefix}", self.display));
            }
        };
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|folder| folder.filename())
            .filter_map(|name| name.strip_prefix("date="))
            .filter_map(|day| parse_day(day).ok())
            .collect())
    }

    /// Every object in a day partition.
    ///
    /// # Errors
    /// When the store cannot be listed.
    pub async fn objects(&self, dataset: Dataset, day: NaiveDate) -> anyhow::Result<Vec<Path>> {
        let prefix = self.partition(dataset, day);
        let listed: Result<Vec<_>, _> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await;
        match listed {
            Ok(paths) => Ok(paths),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(err) => Err(err).with_context(|| format!("listing {}/{prefix}", self.display)),
        }
    }

    /// Deletes every object of the day partition except `keep`; returns how many.
    ///
    /// # Errors
    /// When the store cannot be listed or an object cannot be deleted.
    pub async fn remove_others(
        &self,
        dataset: Dataset,
        day: NaiveDate,
        keep: Option<&Path>,
    ) -> anyhow::Result<usize> {
        let mut removed = 0;
        for path in self.objects(dataset, day).await? {
            if Some(&path) == keep {
                continue;
            }
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(err) => {
                    return Err(err).with_context(|| format!("deleting {}/{path}", self.display));
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_folders_or_s3_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lake");
        let local = Destination::open(out.to_str().unwrap()).unwrap();
        assert!(out.is_dir(), "the folder is created");
        let day = parse_day("2024-05-01").unwrap();
        assert_eq!(
            local.part_file(Dataset::OrderLines, day).as_ref(),
            "order_lines/date=2024-05-01/part-0.parquet"
        );

        let s3 = Destination::open("s3://lake/emporium/v1/").unwrap();
        assert_eq!(
            s3.part_file(Dataset::Orders, day).as_ref(),
            "emporium/v1/orders/date=2024-05-01/part-0.parquet"
        );
        assert_eq!(s3.display(), "s3://lake/emporium/v1");
        let bare = Destination::open("s3://lake").unwrap();
        assert_eq!(
            bare.partition(Dataset::Orders, day).as_ref(),
            "orders/date=2024-05-01"
        );

        for (bad, why) in [
            ("s3://", "needs a bucket"),
            ("s3:///prefix", "needs a bucket"),
            ("gs://bucket/x", "unsupported destination gs://"),
            ("", "must name a folder"),
        ] {
            let err = Destination::open(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
