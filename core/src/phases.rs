//! Where a piece of work's time goes: named phases measured one after another. The extension
//! reports them at DEBUG1 (`SET client_min_messages = debug1`) and stores some in run records;
//! the benchmarks read them there.

use std::time::{Duration, Instant};

/// Phases of a piece of work, each from the end of the one before (the first from the start).
#[derive(Debug, Clone)]
pub struct Phases {
    started: Instant,
    last: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Default for Phases {
    fn default() -> Self {
        Self::start()
    }
}

impl Phases {
    /// Starts measuring now.
    pub fn start() -> Phases {
        let now = Instant::now();
        Phases {
            started: now,
            last: now,
            done: Vec::new(),
        }
    }

    /// Ends the phase `name` now; the next one starts.
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push((name, now - self.last));
        self.last = now;
    }

    /// The time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The milliseconds of the phase `name` (summed, if it was marked more than once); 0 when
    /// it was not marked.
    pub fn ms(&self, name: &str) -> f64 {
        self.done
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, d)| d.as_secs_f64() * 1e3)
            .sum()
    }

    /// "name 1.2 ms, name 3.4 ms", in the order marked.
    pub fn summary(&self) -> String {
        self.done
            .iter()
            .map(|(n, d)| format!("{n} {:.1} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_one_another() {
        let mut p = Phases::start();
        std::thread::sleep(Duration::from_millis(2));
        p.mark("a");
        p.mark("b");
        p.mark("a");
        assert!(p.ms("a") >= 2.0);
        assert!(p.ms("b") < p.ms("a"));
        assert_eq!(p.ms("c"), 0.0);
        assert!(p.elapsed().as_secs_f64() * 1e3 >= p.ms("a") + p.ms("b"));
        let s = p.summary();
        assert!(
            s.starts_with("a ") && s.contains(", b ") && s.ends_with(" ms"),
            "{s}"
        );
    }
}
