//! One line of `metrics.jsonl` per epoch.

use serde::{Deserialize, Serialize};

use crate::memory::PeakMemory;

/// What an epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Mean local loss of each module over the epoch (the last one is the output loss).
    pub loss: Vec<f64>,
    /// Training accuracy of the primary head (training-mode BatchNorm, weights changing).
    pub train_accuracy: f64,
    /// Test accuracy of the primary network (inference-mode BatchNorm).
    pub test_accuracy: f64,
    /// Training accuracy of each aux head, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_train_accuracy: Option<Vec<f64>>,
    /// Test accuracy of each aux head, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_test_accuracy: Option<Vec<f64>>,
    /// Images trained on.
    pub train_images: usize,
    /// Images evaluated.
    pub test_images: usize,
    /// Wall time of the training part of the epoch.
    pub train_seconds: f64,
    /// Wall time of the evaluation.
    pub eval_seconds: f64,
    /// Training throughput.
    pub images_per_second: f64,
    /// Peak memory during the training part of the epoch.
    pub peak_memory: PeakMemory,
    /// Pipelined runs: each stage's time computing over the training's wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_busy: Option<Vec<f64>>,
}

impl EpochMetrics {
    /// A one-line summary for people.
    pub fn summary(&self) -> String {
        let mib = |b: Option<u64>| {
            b.map_or("n/a".to_string(), |b| {
                format!("{:.0} MiB", b as f64 / 1048576.0)
            })
        };
        let last_loss = self.loss.last().copied().unwrap_or(f64::NAN);
        format!(
            "epoch {}: lr {:.4}, loss {:.4}, train acc {:.2}%, test acc {:.2}%, {:.1} img/s, \
             {:.1}s, peak heap {}, peak RSS {}",
            self.epoch,
            self.lr,
            last_loss,
            100.0 * self.train_accuracy,
            100.0 * self.test_accuracy,
            self.images_per_second,
            self.train_seconds + self.eval_seconds,
            mib(self.peak_memory.heap_bytes),
            mib(self.peak_memory.rss_bytes),
        ) + &self.stage_busy.as_ref().map_or(String::new(), |busy| {
            let busy: Vec<String> = busy.iter().map(|b| format!("{:.0}%", 100.0 * b)).collect();
            format!(", stages busy {}", busy.join("/"))
        })
    }
}
