//! Looking people up before the stages run: the [`Directory`] sources (WorkMail's API,
//! a file), a cache kept by the warm container, and the parallel lookups of one
//! message. Stages stay synchronous: the answers travel in the envelope
//! ([`workmail_flow_core::envelope::DirectoryView`]).
//!
//! WorkMail: DescribeEntity finds the entity an address belongs to (a user, a group or
//! a resource; only a user counts), DescribeUser reads its attributes, and
//! ListGroupsForEntity its groups, all for the organization in the config. An address
//! the organization does not know is an answer ("not in the directory"), kept in the
//! cache like any other; a failed call is an error, never kept.

use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workmail_flow_core::config::{DirectorySettings, DirectorySource};
use workmail_flow_core::envelope::directory::addresses_to_look_up;
use workmail_flow_core::envelope::{DirectoryView, Envelope, FileDirectory, Person};

/// A lookup that failed, in words without the address (they go to the logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct DirectoryError {
    pub what: String,
}

impl DirectoryError {
    pub fn new(what: impl Into<String>) -> DirectoryError {
        DirectoryError { what: what.into() }
    }
}

/// What one lookup answers: the user an address belongs to, `None` for "not a user of
/// the organization", or why the directory could not say.
pub type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Person>, DirectoryError>> + Send + 'a>>;

/// Where people are looked up.
pub trait Directory: Send + Sync {
    fn lookup<'a>(&'a self, address: &'a str) -> Lookup<'a>;
}

impl Directory for FileDirectory {
    fn lookup<'a>(&'a self, address: &'a str) -> Lookup<'a> {
        let found = FileDirectory::lookup(self, address).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// WorkMail's directory for one organization.
pub struct WorkMailDirectory {
    client: aws_sdk_workmail::Client,
    organization_id: String,
}

impl WorkMailDirectory {
    pub fn new(client: aws_sdk_workmail::Client, organization_id: impl Into<String>) -> Self {
        WorkMailDirectory {
            client,
            organization_id: organization_id.into(),
        }
    }

    async fn find(&self, address: &str) -> Result<Option<Person>, DirectoryError> {
        use aws_sdk_workmail::error::ProvideErrorMetadata;
        use aws_sdk_workmail::types::EntityType;
        let org = &self.organization_id;
        let failed = |call: &str, code: Option<&str>| {
            DirectoryError::new(format!(
                "WorkMail {call} failed: {}",
                code.unwrap_or("no answer (network or timeout)")
            ))
        };
        let entity = match self
            .client
            .describe_entity()
            .organization_id(org)
            .email(address)
            .send()
            .await
        {
            Ok(e) => e,
            Err(e) if e.code() == Some("EntityNotFoundException") => return Ok(None),
            Err(e) => return Err(failed("DescribeEntity", e.code())),
        };
        if entity.r#type() != Some(&EntityType::User) {
            return Ok(None);
        }
        let Some(id) = entity.entity_id() else {
            return Ok(None);
        };
        let user = match self
            .client
            .describe_user()
            .organization_id(org)
            .user_id(id)
            .send()
            .await
        {
            Ok(u) => u,
            Err(e) if e.code() == Some("EntityNotFoundException") => return Ok(None),
            Err(e) => return Err(failed("DescribeUser", e.code())),
        };
        let mut person = Person {
            email: user.email().unwrap_or(address).to_string(),
            ..Person::default()
        };
        for (name, value) in [
            ("display_name", user.display_name()),
            ("first_name", user.first_name()),
            ("last_name", user.last_name()),
            ("initials", user.initials()),
            ("job_title", user.job_title()),
            ("department", user.department()),
            ("company", user.company()),
            ("office", user.office()),
            ("telephone", user.telephone()),
            ("street", user.street()),
            ("city", user.city()),
            ("zip_code", user.zip_code()),
            ("country", user.country()),
        ] {
            if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
                person.attributes.insert(name.to_string(), v.to_string());
            }
        }
        let mut pages = self
            .client
            .list_groups_for_entity()
            .organization_id(org)
            .entity_id(id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("ListGroupsForEntity", e.code()))?;
            person.groups.extend(
                page.groups()
                    .iter()
                    .filter_map(|g| g.group_name().map(str::to_string)),
            );
        }
        Ok(Some(person))
    }
}

impl Directory for WorkMailDirectory {
    fn lookup<'a>(&'a self, address: &'a str) -> Lookup<'a> {
        Box::pin(self.find(address))
    }
}

/// A directory with a cache in front: answers (found or not) are kept `ttl` in a warm
/// container, at most `capacity` of them, the oldest dropped first.
pub struct CachedDirectory {
    inner: Arc<dyn Directory>,
    ttl: Duration,
    capacity: usize,
    max_parallel: usize,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    answers: HashMap<String, (Instant, Option<Person>)>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<String>,
}

/// How one message's lookups went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LookupStats {
    pub asked: usize,
    pub cached: usize,
}

impl CachedDirectory {
    pub fn new(inner: Arc<dyn Directory>, settings: &DirectorySettings) -> CachedDirectory {
        CachedDirectory {
            inner,
            ttl: Duration::from_secs(settings.cache_seconds),
            capacity: settings.cache_entries.max(1),
            max_parallel: settings.max_parallel.max(1),
            cache: Mutex::default(),
        }
    }

    fn cached(&self, address: &str) -> Option<Option<Person>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .answers
            .get(address)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, p)| p.clone())
    }

    fn keep(&self, address: &str, answer: &Option<Person>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache
            .answers
            .insert(address.to_string(), (Instant::now(), answer.clone()))
            .is_none()
        {
            cache.order.push_back(address.to_string());
        }
        while cache.answers.len() > self.capacity {
            let Some(oldest) = cache.order.pop_front() else {
                break;
            };
            cache.answers.remove(&oldest);
        }
    }

    /// Every address's answer, from the cache or asked with at most `max_parallel` in
    /// flight; the first error fails the whole lookup (a partial answer could pass a
    /// group rule it should not).
    pub async fn look_up(
        &self,
        addresses: &[String],
    ) -> Result<(DirectoryView, LookupStats), DirectoryError> {
        let mut answers = Vec::with_capacity(addresses.len());
        let mut missing = Vec::new();
        let mut stats = LookupStats::default();
        for a in addresses {
            match self.cached(a) {
                Some(p) => {
                    stats.cached += 1;
                    answers.push((a.clone(), p));
                }
                None => missing.push(a.clone()),
            }
        }
        // Owned addresses and an owned directory handle in each lookup: a closure over
        // borrowed ones is not `Send` for every lifetime, which a spawned session needs
        // (rust-lang/rust#102211).
        let found: Vec<Option<Person>> = stream::iter(missing.clone())
            .map(|a| {
                let inner = Arc::clone(&self.inner);
                async move { inner.lookup(&a).await }
            })
            .buffered(self.max_parallel)
            .try_collect()
            .await?;
        for (a, answer) in missing.into_iter().zip(found) {
            stats.asked += 1;
            self.keep(&a, &answer);
            answers.push((a, answer));
        }
        Ok((DirectoryView::consulted(answers), stats))
    }

    /// The directory view for one message: the addresses its stages need (none, and
    /// nothing is asked), looked up.
    pub async fn view_for(
        &self,
        pipeline_needs: workmail_flow_core::envelope::DirectoryNeeds,
        raw: &[u8],
        envelope: &Envelope,
    ) -> Result<(DirectoryView, LookupStats), DirectoryError> {
        if !pipeline_needs.any() {
            return Ok((DirectoryView::default(), LookupStats::default()));
        }
        let addresses = addresses_to_look_up(raw, envelope, pipeline_needs);
        self.look_up(&addresses).await
    }
}

/// The directory's answers for one message before its stages run, for any transport:
/// nothing is asked when no stage reads the directory or none is open. When the lookups
/// fail (or run past `deadline`), the config's `on_error` decides: `retry` returns the
/// error (the transport makes the sender try again), `skip` runs the stages with the
/// directory marked unavailable.
pub async fn view_by(
    pipeline: &workmail_flow_core::Pipeline,
    directory: Option<&CachedDirectory>,
    raw: &[u8],
    envelope: &Envelope,
    deadline: tokio::time::Instant,
) -> Result<DirectoryView, DirectoryError> {
    let needs = pipeline.directory_needs();
    let Some(directory) = directory.filter(|_| needs.any()) else {
        return Ok(DirectoryView::default());
    };
    let started = std::time::Instant::now();
    let failure =
        match tokio::time::timeout_at(deadline, directory.view_for(needs, raw, envelope)).await {
            Ok(Ok((view, stats))) => {
                tracing::info!(
                    asked = stats.asked,
                    cached = stats.cached,
                    lookup_ms = started.elapsed().as_millis() as u64,
                    "directory"
                );
                return Ok(view);
            }
            Ok(Err(e)) => e,
            Err(_) => DirectoryError::new("the lookups ran past the answer deadline"),
        };
    match pipeline
        .directory
        .as_ref()
        .map(|d| d.on_error)
        .unwrap_or_default()
    {
        workmail_flow_core::config::OnError::Retry => {
            tracing::error!(error = %failure, on_error = "retry", "directory lookup failed");
            Err(failure)
        }
        workmail_flow_core::config::OnError::Skip => {
            tracing::warn!(error = %failure, on_error = "skip", "directory lookup failed; running the stages without it");
            Ok(DirectoryView::unavailable(failure.what))
        }
    }
}

/// The directory `settings` names, behind its cache; `sdk` configures the WorkMail
/// client (the environment's when `None`). `--directory FILE` reaches here as settings
/// whose source is that file (`lambda::Function::open_directory`).
pub async fn open(
    settings: &DirectorySettings,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<CachedDirectory, DirectoryError> {
    let inner: Arc<dyn Directory> = match &settings.source {
        DirectorySource::File { path } => {
            Arc::new(FileDirectory::load(path).map_err(|e| DirectoryError::new(e.to_string()))?)
        }
        DirectorySource::WorkMail { organization_id } => {
            let conf = match sdk {
                Some(c) => c.clone(),
                None => crate::workmail::aws::sdk_config().await,
            };
            Arc::new(WorkMailDirectory::new(
                aws_sdk_workmail::Client::new(&conf),
                organization_id.clone(),
            ))
        }
    };
    Ok(CachedDirectory::new(inner, settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory that counts its calls and fails for addresses starting "down".
    struct Counting {
        calls: AtomicUsize,
    }

    impl Directory for Counting {
        fn lookup<'a>(&'a self, address: &'a str) -> Lookup<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if address.starts_with("down") {
                    return Err(DirectoryError::new(
                        "WorkMail DescribeEntity failed: ThrottlingException",
                    ));
                }
                Ok(address.ends_with("@corp.example").then(|| Person {
                    email: address.to_string(),
                    ..Person::default()
                }))
            })
        }
    }

    fn cached(capacity: usize, ttl: u64) -> (Arc<Counting>, CachedDirectory) {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
        });
        let mut settings = DirectorySettings::file("unused".into());
        settings.cache_entries = capacity;
        settings.cache_seconds = ttl;
        settings.max_parallel = 2;
        (inner.clone(), CachedDirectory::new(inner, &settings))
    }

    fn block<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn answers_found_and_not_found_are_cached_and_errors_are_not() {
        let (inner, dir) = cached(100, 300);
        let addrs = [
            "a@corp.example".to_string(),
            "x@partner.example".to_string(),
        ];
        let (view, stats) = block(dir.look_up(&addrs)).unwrap();
        assert!(view.person("a@corp.example").is_some());
        assert!(view.person("x@partner.example").is_none());
        assert_eq!(
            stats,
            LookupStats {
                asked: 2,
                cached: 0
            }
        );
        let (_, stats) = block(dir.look_up(&addrs)).unwrap();
        assert_eq!(
            stats,
            LookupStats {
                asked: 0,
                cached: 2
            }
        );
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        let down = ["down@corp.example".to_string()];
        assert!(block(dir.look_up(&down)).is_err());
        assert!(block(dir.look_up(&down)).is_err());
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            4,
            "an error is asked again"
        );
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_a_zero_ttl_keeps_nothing() {
        let (inner, dir) = cached(2, 300);
        let addrs: Vec<String> = (0..5).map(|i| format!("u{i}@corp.example")).collect();
        block(dir.look_up(&addrs)).unwrap();
        assert_eq!(dir.cache.lock().unwrap().answers.len(), 2);
        let (_, stats) = block(dir.look_up(&addrs[3..])).unwrap();
        assert_eq!(stats.cached, 2, "the newest two are kept");
        let (inner0, nocache) = cached(10, 0);
        block(nocache.look_up(&addrs[..1])).unwrap();
        block(nocache.look_up(&addrs[..1])).unwrap();
        assert_eq!(inner0.calls.load(Ordering::SeqCst), 2);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 5);
    }
}
