//! argon2id password hashing on a small dedicated thread pool.
//!
//! Each hash takes `argon2_memory_kib` of memory and ~20 ms of CPU. Exactly
//! `argon2_concurrency` threads do this work; further sign-ins queue for them instead of
//! exhausting memory, and the work never runs on async worker threads. Dedicated threads also
//! bound what the allocator keeps: each thread's freed 19 MiB blocks stay in that thread's
//! malloc arena, so a general blocking pool (dozens of threads, as many arenas) would hold
//! hundreds of megabytes after a burst of sign-ins.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::CryptoError;
use super::secret::Secret;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: mpsc::Sender<Job>,
    /// Jobs queued or running, and how many may be: a burst beyond that is refused
    /// (`PoolBusy`) instead of growing the queue without bound.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    capacity: usize,
    /// A hash of a random password, verified against when the user does not exist so an
    /// unknown username costs the same time as a known one. Made on first use (on the
    /// pool), not at start-up.
    dummy: Arc<std::sync::OnceLock<String>>,
    memory: Memory,
}

/// The argon2 working memory, reused from hash to hash so a burst of sign-ins costs
/// `argon2_concurrency` × `argon2_memory_kib`, not allocator churn. Last in, first out: the
/// next hash takes the block the previous one just used, still in the CPU cache (two 19 MiB
/// blocks used in turn do not both fit in a 32 MiB L3; one-at-a-time sign-ins then took 10%
/// longer than argon2 alone).
#[derive(Clone)]
struct Memory {
    free: Arc<Mutex<Vec<Vec<Block>>>>,
    keep: usize,
}

impl Memory {
    fn with<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            match free.iter().rposition(|m| m.len() == blocks) {
                Some(i) => free.remove(i),
                None => Vec::new(),
            }
        };
        let mut mem = if taken.len() == blocks {
            taken
        } else {
            vec![Block::default(); blocks]
        };
        let out = f(&mut mem);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.push(mem);
        if free.len() > self.keep {
            // The least recently used block goes: one of another size (a hash made with older
            // parameters) is never taken again, so it drifts to the front.
            free.remove(0);
        }
        out
    }
}

/// Outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with weaker parameters than configured: store a fresh hash.
    YesRehash,
}

impl PasswordHasher {
    /// `concurrency` hashing threads; at most `queue_limit` further jobs wait for them.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: u32,
        queue_limit: u32,
    ) -> Result<Self, CryptoError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| CryptoError::Password(e.to_string()))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking the next job.
                        let next = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return, // every sender dropped: the hasher is gone
                        }
                    }
                })
                .map_err(|e| CryptoError::Password(format!("cannot start hashing threads: {e}")))?;
        }
        Ok(Self {
            params,
            jobs,
            in_flight: Arc::default(),
            capacity: concurrency.max(1) as usize
                + usize::try_from(queue_limit).unwrap_or(usize::MAX),
            dummy: Arc::default(),
            memory: Memory {
                free: Arc::default(),
                keep: concurrency.max(1) as usize,
            },
        })
    }

    /// Runs `f` on the hashing threads and waits for its result without blocking the caller.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        use std::sync::atomic::Ordering;
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(CryptoError::PoolBusy);
        }
        let in_flight = self.in_flight.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = std::time::Instant::now();
        self.jobs
            .send(Box::new(move || {
                let started = std::time::Instant::now();
                let out = f();
                in_flight.fetch_sub(1, Ordering::AcqRel);
                tracing::debug!(
                    wait_us = (started - queued).as_micros() as u64,
                    hash_us = started.elapsed().as_micros() as u64,
                    "argon2"
                );
                let _ = tx.send(out);
            }))
            .map_err(|_| {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                CryptoError::PoolClosed
            })?;
        rx.await.map_err(|_| CryptoError::PoolClosed)
    }

    /// Hashes on the pool.
    pub async fn hash(&self, password: Secret<String>) -> Result<String, CryptoError> {
        let params = self.params.clone();
        let memory = self.memory.clone();
        self.run(move || hash_blocking(&memory, &params, password.expose()))
            .await?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when there is none.
    pub async fn verify(
        &self,
        password: Secret<String>,
        phc: Option<String>,
    ) -> Result<Verified, CryptoError> {
        let params = self.params.clone();
        let real = phc.is_some();
        let dummy = self.dummy.clone();
        let memory = self.memory.clone();
        let ok = self
            .run(move || {
                let phc = match phc {
                    Some(p) => p,
                    None => dummy
                        .get_or_init(|| {
                            hash_blocking(&memory, &params, &super::secret::random_token())
                                .unwrap_or_default()
                        })
                        .clone(),
                };
                verify_blocking(&memory, &params, password.expose(), &phc)
            })
            .await?;
        Ok(if real { ok } else { Verified::No })
    }

    /// Hash synchronously (CLI use, outside the server).
    pub fn hash_now(&self, password: &str) -> Result<String, CryptoError> {
        hash_blocking(&self.memory, &self.params, password)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// argon2 into `out` with reused memory.
fn compute(
    memory: &Memory,
    a: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out_len: usize,
) -> Option<Output> {
    memory.with(blocks, |mem| {
        Output::init_with(out_len, |out| {
            a.hash_password_into_with_memory(password, salt, out, &mut *mem)
                .map_err(|_| password_hash::Error::Crypto)
        })
        .ok()
    })
}

fn hash_blocking(memory: &Memory, params: &Params, password: &str) -> Result<String, CryptoError> {
    let err = |e: password_hash::Error| CryptoError::Password(e.to_string());
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(err)?;
    let out_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(
        memory,
        &argon2(params),
        params.block_count(),
        password.as_bytes(),
        salt_bytes,
        out_len,
    )
    .ok_or_else(|| CryptoError::Password("argon2 failed".into()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(err)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_blocking(memory: &Memory, params: &Params, password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified::No;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return Verified::No;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return Verified::No,
    };
    // Verify with the parameters recorded in the PHC string, then compare with the current ones.
    let Ok(stored) = Params::try_from(&parsed) else {
        return Verified::No;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Verified::No;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return Verified::No;
    };
    let a = Argon2::new(algorithm, version, stored.clone());
    // `Output`'s equality is constant-time.
    let matches = compute(
        memory,
        &a,
        stored.block_count(),
        password.as_bytes(),
        salt_bytes,
        expected.len(),
    )
    .is_some_and(|out| out == expected);
    if !matches {
        return Verified::No;
    }
    let current = algorithm == Algorithm::Argon2id
        && version == Version::V0x13
        && stored.m_cost() >= params.m_cost()
        && stored.t_cost() >= params.t_cost()
        && stored.p_cost() >= params.p_cost();
    if current {
        Verified::Yes
    } else {
        Verified::YesRehash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1, 2, 8).unwrap()
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_growing() {
        // One thread and room for one waiting job: of a burst of eight, at most two are
        // taken and the rest are refused at once.
        let h = PasswordHasher::new(2048, 4, 1, 1, 1).unwrap();
        let burst: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(Secret::new("pw".into())).await })
            })
            .collect();
        let mut busy = 0;
        for j in burst {
            if let Err(CryptoError::PoolBusy) = j.await.unwrap() {
                busy += 1;
            }
        }
        assert!(busy >= 6, "{busy} of 8 refused");
        // Once the queue drains, hashing works again.
        assert!(h.hash(Secret::new("pw".into())).await.is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = small();
        let phc = h.hash(Secret::new("correct horse".into())).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert_eq!(
            h.verify(Secret::new("correct horse".into()), Some(phc.clone()))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify(Secret::new("wrong".into()), Some(phc))
                .await
                .unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn unknown_user_is_refused_after_a_real_verification() {
        assert_eq!(
            small().verify(Secret::new("x".into()), None).await.unwrap(),
            Verified::No
        );
    }

    #[test]
    fn phc_strings_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(64, 1, 1, None).unwrap();
        let memory = Memory {
            free: Arc::default(),
            keep: 1,
        };
        // Ours verifies with the crate's verifier…
        let ours = hash_blocking(&memory, &params, "pw").unwrap();
        assert!(
            argon2(&params)
                .verify_password(b"pw", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        // …and a PHC string made by the crate verifies with ours.
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = argon2(&params)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            verify_blocking(&memory, &params, "pw", &theirs),
            Verified::Yes
        );
        assert_eq!(
            verify_blocking(&memory, &params, "nope", &theirs),
            Verified::No
        );
        assert_eq!(
            verify_blocking(&memory, &params, "pw", "not a phc string"),
            Verified::No
        );
    }

    #[tokio::test]
    async fn weaker_parameters_ask_for_a_rehash() {
        let weak = small();
        let phc = weak.hash(Secret::new("pw".into())).await.unwrap();
        let strong = PasswordHasher::new(128, 2, 1, 1, 8).unwrap();
        assert_eq!(
            strong
                .verify(Secret::new("pw".into()), Some(phc))
                .await
                .unwrap(),
            Verified::YesRehash
        );
    }
}
