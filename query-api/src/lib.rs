//! Query API: REST queries served from caches and read models.
