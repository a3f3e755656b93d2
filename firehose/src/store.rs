//! Where objects go: a local directory, or an S3-compatible object store through `object_store`.
//!
//! A delivery stream names its bucket the AWS way (`BucketARN` `arn:aws:s3:::NAME`); sluiced's
//! configuration maps bucket names to a directory or to an S3 endpoint ([`Buckets`]), so the
//! delivery stream's configuration stays AWS's.
//!
//! `put` returns only once the object is durable: for a directory, after the file's data and
//! the directory entry are fsynced (written to a temporary name, fsynced, renamed, directory
//! fsynced, so a reader never sees a partial object); for an object store, after the PUT was
//! acknowledged. The engine reports records as delivered only after that.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::DeliveryError;

/// How to reach an S3-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// `http://127.0.0.1:9000`, `https://s3.us-east-1.amazonaws.com`, …
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// One bucket objects are written to.
#[derive(Debug, Clone)]
pub enum Bucket {
    Directory { name: String, root: PathBuf },
    Store { name: String, store: Arc<dyn ObjectStore> },
}

impl Bucket {
    /// The bucket's name (the last part of its ARN).
    pub fn name(&self) -> &str {
        match self {
            Bucket::Directory { name, .. } | Bucket::Store { name, .. } => name,
        }
    }

    /// Writes `body` as object `key`; returns once it is durable.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), DeliveryError> {
        match self {
            Bucket::Directory { root, .. } => {
                let path = directory_path(root, key);
                let root = root.clone();
                tokio::task::spawn_blocking(move || write_durably(&root, &path, &body))
                    .await
                    .expect("the write task does not panic")
            }
            Bucket::Store { name, store } => {
                let path = StorePath::parse(key).unwrap_or_else(|_| StorePath::from(key));
                store
                    .put(&path, PutPayload::from(body))
                    .await
                    .map(|_| ())
                    .map_err(|source| DeliveryError::Store { bucket: name.clone(), source })
            }
        }
    }
}

/// The file of object `key` under `root`. Keys may hold text from records (partition keys), so
/// the segments a file system would interpret (`.`, `..`, empty) are escaped rather than
/// followed: an object can never land outside `root`.
pub fn directory_path(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    for segment in key.split('/') {
        match segment {
            "" => path.push("%2F"),
            "." => path.push("%2E"),
            ".." => path.push("%2E%2E"),
            s => path.push(s.replace('\0', "%00")),
        }
    }
    path
}

fn write_durably(root: &Path, path: &Path, body: &[u8]) -> Result<(), DeliveryError> {
    let err = |source: std::io::Error| DeliveryError::Directory { path: path.display().to_string(), source };
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(err)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&temporary).map_err(err)?;
    file.write_all(body).map_err(err)?;
    file.sync_data().map_err(err)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(err)?;
    // The rename is durable only once the directory is; new directories up to the root too.
    let mut d = Some(dir);
    while let Some(current) = d {
        std::fs::File::open(current).and_then(|f| f.sync_all()).map_err(err)?;
        if current == root {
            break;
        }
        d = current.parent();
    }
    Ok(())
}

/// The buckets this Sluice writes to, by name.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    by_name: BTreeMap<String, Bucket>,
}

impl Buckets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Objects of bucket `name` go to files under `root`.
    pub fn insert_directory(&mut self, name: impl Into<String>, root: impl Into<PathBuf>) {
        let name = name.into();
        self.by_name.insert(name.clone(), Bucket::Directory { name, root: root.into() });
    }

    /// Objects of bucket `name` go to the bucket of the same name at `endpoint`.
    pub fn insert_s3(&mut self, name: impl Into<String>, endpoint: &S3Endpoint) -> Result<(), DeliveryError> {
        let name = name.into();
        let store = AmazonS3Builder::new()
            .with_endpoint(&endpoint.url)
            .with_region(&endpoint.region)
            .with_bucket_name(&name)
            .with_access_key_id(&endpoint.access_key_id)
            .with_secret_access_key(&endpoint.secret_access_key)
            .with_allow_http(endpoint.url.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|source| DeliveryError::Store { bucket: name.clone(), source })?;
        self.by_name.insert(name.clone(), Bucket::Store { name, store: Arc::new(store) });
        Ok(())
    }

    /// Objects of bucket `name` go to `store` (any `object_store` implementation).
    pub fn insert_store(&mut self, name: impl Into<String>, store: Arc<dyn ObjectStore>) {
        let name = name.into();
        self.by_name.insert(name.clone(), Bucket::Store { name, store });
    }

    /// The bucket of a `BucketARN` (`arn:aws:s3:::NAME`, or a bare name).
    pub fn resolve(&self, bucket_arn: &str) -> Result<Bucket, DeliveryError> {
        let name = bucket_name(bucket_arn);
        self.by_name.get(name).cloned().ok_or_else(|| DeliveryError::UnknownBucket { bucket: name.to_string() })
    }
}

/// The bucket name of a `BucketARN`.
pub fn bucket_name(bucket_arn: &str) -> &str {
    bucket_arn.strip_prefix("arn:").and_then(|rest| rest.rsplit(":::").next()).unwrap_or(bucket_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_leave_the_root() {
        let root = Path::new("/data/b");
        assert_eq!(directory_path(root, "a/b/c.gz"), Path::new("/data/b/a/b/c.gz"));
        assert_eq!(directory_path(root, "../../etc/x"), Path::new("/data/b/%2E%2E/%2E%2E/etc/x"));
        assert_eq!(directory_path(root, "/abs//x"), Path::new("/data/b/%2F/abs/%2F/x"));
        assert!(directory_path(root, "./a/../../b").starts_with(root));
    }

    #[test]
    fn bucket_names() {
        assert_eq!(bucket_name("arn:aws:s3:::my-bucket"), "my-bucket");
        assert_eq!(bucket_name("arn:aws-cn:s3:::b.c"), "b.c");
        assert_eq!(bucket_name("plain"), "plain");
    }

    #[tokio::test]
    async fn directory_put_is_whole_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut buckets = Buckets::new();
        buckets.insert_directory("b", dir.path());
        let bucket = buckets.resolve("arn:aws:s3:::b").unwrap();
        bucket.put("x/y/z", Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("x/y/z")).unwrap(), b"hello");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("x/y")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
        assert!(matches!(buckets.resolve("arn:aws:s3:::other"), Err(DeliveryError::UnknownBucket { .. })));
    }
}
