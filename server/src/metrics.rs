//! Counters and a latency histogram in Prometheus text format, kept with
//! atomics: no registry crate for a handful of series.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request latency buckets, seconds.
const BUCKETS_S: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub sync_batches: AtomicU64,
    pub changes_accepted: AtomicU64,
    pub changes_duplicate: AtomicU64,
    pub changes_rejected: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    pub photo_uploads_started: AtomicU64,
    pub photos_completed: AtomicU64,
    buckets: [AtomicU64; BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe_latency(&self, seconds: f64) {
        for (i, b) in BUCKETS_S.iter().enumerate() {
            if seconds <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters = [
            (
                "fieldbook_http_requests_total",
                "HTTP requests served",
                &self.requests,
            ),
            (
                "fieldbook_http_errors_total",
                "HTTP requests answered with an error status",
                &self.errors,
            ),
            (
                "fieldbook_sync_batches_total",
                "sync requests processed",
                &self.sync_batches,
            ),
            (
                "fieldbook_changes_accepted_total",
                "pushed items stored",
                &self.changes_accepted,
            ),
            (
                "fieldbook_changes_duplicate_total",
                "pushed items the server already had",
                &self.changes_duplicate,
            ),
            (
                "fieldbook_changes_rejected_total",
                "pushed items refused",
                &self.changes_rejected,
            ),
            (
                "fieldbook_bytes_received_total",
                "request body bytes",
                &self.bytes_in,
            ),
            (
                "fieldbook_bytes_sent_total",
                "response body bytes",
                &self.bytes_out,
            ),
            ("fieldbook_logins_total", "successful logins", &self.logins),
            (
                "fieldbook_login_failures_total",
                "refused logins",
                &self.login_failures,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(c)
            );
        }
        let name = "fieldbook_http_request_duration_seconds";
        let _ = writeln!(s, "# HELP {name} request latency\n# TYPE {name} histogram");
        for (i, b) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {}", g(&self.buckets[i]));
        }
        let count = g(&self.latency_count);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{name}_sum {}", g(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(s, "{name}_count {count}");
        s
    }
}
