//! A transport that loses messages on purpose, for simulations and tests:
//! it wraps a real transport and, with a seeded probability, drops the
//! request before it leaves, drops the response after the server handled
//! the request, or cuts the response short.

use super::client::{Transport, TransportError};

/// What the lossy transport did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub sent: u64,
    pub requests_dropped: u64,
    pub responses_dropped: u64,
    pub responses_cut: u64,
    pub chunks_lost: u64,
}

/// Wraps `T`, failing each exchange with probability `loss`.
pub struct LossyTransport<T> {
    inner: T,
    loss: f64,
    state: u64,
    pub counts: FaultCounts,
}

impl<T> LossyTransport<T> {
    /// `loss` in [0, 1]; the same seed gives the same faults.
    pub fn new(inner: T, loss: f64, seed: u64) -> LossyTransport<T> {
        LossyTransport {
            inner,
            loss: loss.clamp(0.0, 1.0),
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            counts: FaultCounts::default(),
        }
    }

    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn roll(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl<T: Transport> Transport for LossyTransport<T> {
    fn sync(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let fail = self.roll() < self.loss;
        let how = self.next() % 3;
        if fail && how == 0 {
            self.counts.requests_dropped += 1;
            return Err(TransportError::Unreachable(
                "simulated: request lost".into(),
            ));
        }
        self.counts.sent += 1;
        let reply = self.inner.sync(request)?;
        if fail && how == 1 {
            self.counts.responses_dropped += 1;
            return Err(TransportError::Unreachable(
                "simulated: response lost".into(),
            ));
        }
        if fail && how == 2 && !reply.is_empty() {
            self.counts.responses_cut += 1;
            let cut = (self.next() as usize) % reply.len();
            return Ok(reply[..cut].to_vec());
        }
        Ok(reply)
    }
}

impl<T: super::tus::PhotoTransport> super::tus::PhotoTransport for LossyTransport<T> {
    fn head(&mut self, hash: &str) -> Result<Option<super::tus::UploadState>, TransportError> {
        if self.roll() < self.loss / 2.0 {
            return Err(TransportError::Unreachable("simulated: HEAD lost".into()));
        }
        self.inner.head(hash)
    }

    fn create(&mut self, hash: &str, length: u64) -> Result<(), TransportError> {
        self.inner.create(hash, length)
    }

    /// A chunk is lost before it leaves, or its acknowledgement is lost after
    /// the server stored it (the next attempt then meets a 409 and resumes
    /// from the server's offset).
    fn patch(&mut self, hash: &str, offset: u64, chunk: &[u8]) -> Result<u64, TransportError> {
        let fail = self.roll() < self.loss;
        let after = self.next().is_multiple_of(2);
        if fail && !after {
            self.counts.chunks_lost += 1;
            return Err(TransportError::Unreachable("simulated: chunk lost".into()));
        }
        let r = self.inner.patch(hash, offset, chunk)?;
        if fail {
            self.counts.chunks_lost += 1;
            return Err(TransportError::Unreachable(
                "simulated: chunk acknowledgement lost".into(),
            ));
        }
        Ok(r)
    }
}
