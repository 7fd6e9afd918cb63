//! Projector: folds the event log into read models, caches, the search index and the integration bus.
