//! Progressive rollouts on this machine.
//!
//! Canary: the next release's canary replicas
//! start next to the stable ones and take an exact share of requests per
//! step (`set_weight`), waiting (`pause`) or measuring (`analysis`, and a
//! background analysis) in between; promoted, the release gets its full
//! replica count and all traffic; aborted (by hand, a failed analysis or
//! a canary replica that died), traffic goes back to stable at once and
//! the canary stops.
//!
//! Blue-green: the next release (green) starts in full behind a preview
//! address of its own; after the pre-promotion analysis and the promotion
//! (automatic, after a delay, or by hand) the stable address switches to it
//! atomically, while the old replicas (blue) stay warm for
//! `scale_down_delay`: `launchway rollout undo` (or a failed post-promotion
//! analysis) switches back instantly, with no start-up.
//!
//! The state is published to `<data>/rollouts/<env>.json` at every
//! transition, for `launchway rollout status`.

use super::{Desired, Health, LocalEnvironment, Replica, Status, stop};
use crate::analysis::{self, Measurement, Outcome, Tally, Vars, Verdict};
use crate::config::strategy::{AnalysisTemplate, BlueGreen, Canary, OnFailure, Provider, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The canary replicas of the next release and their share.
pub(crate) struct CanarySet {
    pub(crate) desired: Desired,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) weight: u32,
    /// Sticky sides, the testers' header, mirroring.
    pub(crate) policy: launchway_proxy::Policy,
}

/// A blue-green switch's previous release (blue): running, out of the
/// route, for an instant switch back until its window closes. Saved with
/// the state, so a reconciler that restarts during the window keeps it.
pub(crate) struct Warm {
    pub(crate) desired: Desired,
    pub(crate) dir: PathBuf,
    pub(crate) replicas: Vec<Replica>,
    /// Unix milliseconds when the window closes; `None` while the
    /// post-promotion analysis runs (the delay starts after it).
    pub(crate) until_ms: Option<u64>,
}

/// The data plane's traffic policy for a canary's `traffic:` settings.
fn policy_of(t: &crate::config::strategy::Traffic) -> launchway_proxy::Policy {
    use crate::config::strategy::Sticky;
    launchway_proxy::Policy {
        sticky_header: match &t.sticky {
            Some(Sticky::Header(h)) => Some(h.to_ascii_lowercase()),
            _ => None,
        },
        sticky_cookie: match &t.sticky {
            Some(Sticky::Cookie(c)) => Some(c.clone()),
            _ => None,
        },
        header: t.header.as_ref().map(|h| h.to_ascii_lowercase()),
        mirror: t.mirror,
        sample_path: None,
    }
}

/// What `launchway rollout …` asks of a rollout in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Past the current pause (or an inconclusive analysis).
    Promote,
    /// Straight to 100%, skipping what is left.
    PromoteFull,
    Abort,
    /// Blue-green, while the old release is warm: switch back.
    Undo,
}

/// A rollout as `launchway rollout status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub environment: String,
    pub strategy: String,
    pub stable: String,
    pub canary: String,
    /// The step being run (0-based) and how many there are.
    pub step: usize,
    pub steps: usize,
    /// Percent of requests to the canary.
    pub weight: u32,
    /// Progressing, Paused, Analyzing, Promoted, Aborted.
    pub phase: String,
    pub message: String,
    pub measurements: Vec<Measurement>,
    /// Unix milliseconds.
    pub started_at: u64,
    pub updated_at: u64,
    /// Blue-green: where the new release answers before the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// An abort: milliseconds from the decision until the data plane sent
    /// the canary nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_routed_ms: Option<f64>,
}

/// Whether a rollout in `phase` still takes commands.
pub fn is_live(phase: &str) -> bool {
    matches!(phase, "Progressing" | "Paused" | "Analyzing" | "Switched")
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The rollout file of `name` under `data`, if there is one.
pub fn read_status(data: &std::path::Path, name: &str) -> Option<RolloutStatus> {
    serde_json::from_slice(&std::fs::read(data.join("rollouts").join(format!("{name}.json"))).ok()?)
        .ok()
}

/// Why the rollout stops early.
enum Stop {
    Abort(String),
    PromoteFull,
}

impl LocalEnvironment {
    /// Hands `rollout promote|abort` to the rollout in progress.
    pub fn command(&self, c: Command) -> Result<(), String> {
        let running = self
            .rollout
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| is_live(&r.phase)))
            .unwrap_or(false);
        if !running {
            return Err(format!("no rollout is in progress in '{}'", self.name));
        }
        if let Ok(mut q) = self.control.lock() {
            q.push(c);
        }
        Ok(())
    }

    /// Why the last rollout was aborted, and what its strategy asks for
    /// (taken: asked once).
    pub fn take_abort(&self) -> Option<(String, OnFailure)> {
        self.last_abort.lock().ok().and_then(|mut a| a.take())
    }

    pub fn rollout_status(&self) -> Option<RolloutStatus> {
        self.rollout.lock().ok().and_then(|r| r.clone())
    }

    fn publish(&self, edit: impl FnOnce(&mut RolloutStatus)) {
        let snapshot = match self.rollout.lock() {
            Ok(mut r) => {
                let Some(st) = r.as_mut() else { return };
                edit(st);
                st.updated_at = now_ms();
                st.clone()
            }
            Err(_) => return,
        };
        let dir = self.data.join("rollouts");
        if std::fs::create_dir_all(&dir).is_ok() {
            let tmp = dir.join(format!(".{}.json", self.name));
            if std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(&snapshot).unwrap_or_default(),
            )
            .is_ok()
            {
                let _ = std::fs::rename(tmp, dir.join(format!("{}.json", self.name)));
            }
        }
    }

    /// A command or a reason to stop, if one arrived.
    fn interrupted(&self, background: &std::sync::Mutex<Option<String>>) -> Option<Stop> {
        if let Some(why) = background.lock().ok().and_then(|b| b.clone()) {
            return Some(Stop::Abort(why));
        }
        if let Ok(mut s) = self.state.lock()
            && let Some(c) = s.canary.as_mut()
            && let Some(i) = c.replicas.iter_mut().position(|r| !r.running())
        {
            return Some(Stop::Abort(format!("canary replica {i} exited")));
        }
        let cmds: Vec<Command> = self
            .control
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        if cmds.contains(&Command::Abort) {
            return Some(Stop::Abort(
                "aborted by hand (launchway rollout abort)".into(),
            ));
        }
        if cmds.contains(&Command::Undo) {
            return Some(Stop::Abort(
                "undone by hand (launchway rollout undo)".into(),
            ));
        }
        if cmds.contains(&Command::PromoteFull) {
            return Some(Stop::PromoteFull);
        }
        if cmds.contains(&Command::Promote) {
            // Only a pause reads it; put it back for the one waiting.
            if let Ok(mut q) = self.control.lock() {
                q.push(Command::Promote);
            }
        }
        None
    }

    /// A blue-green warm window that could not be kept across a restart
    /// (the previous release no longer answered, or its time was up): the
    /// switch stands, going back is a rollback now.
    pub(super) async fn finish_interrupted_switch(&self) {
        self.close_preview().await;
        self.publish(|r| {
            r.phase = "Promoted".into();
            r.message = format!(
                "{} serves all traffic; the previous release's warm window ended while the reconciler was down (to go back: launchway rollback)",
                r.canary
            );
        });
    }

    /// Says in the rollout status that a restarted reconciler kept the
    /// warm window.
    pub(super) fn publish_resumed_window(&self) {
        let left = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.warm.as_ref().map(|w| w.until_ms));
        self.publish(|r| {
            r.message = match left {
                Some(Some(u)) => format!(
                    "resumed after a restart; the previous release stays warm for {}s more: `launchway rollout undo` switches back",
                    u.saturating_sub(now_ms()) / 1000
                ),
                _ => "resumed after a restart; the post-promotion analysis starts over, the previous release stays warm: `launchway rollout undo` switches back".into(),
            };
        });
    }

    /// Whether a blue-green switch's previous release is kept warm.
    pub fn has_warm_window(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.warm.is_some())
    }

    /// Runs to its end the warm window an earlier reconciler left (taken
    /// over by `adopt`): the post-promotion analysis if it had not
    /// finished, then what is left of `scale_down_delay`; `rollout undo`
    /// or a failed analysis switches back. `None` when there is none.
    pub async fn resume_warm_window(
        self: &Arc<Self>,
        env: &crate::config::Environment,
    ) -> Option<Result<Status, String>> {
        let (green, blue, dir) = self.state.lock().ok().and_then(|s| {
            let w = s.warm.as_ref()?;
            Some((s.desired.clone()?, w.desired.clone(), s.release_dir.clone()))
        })?;
        let b = match &env.strategy {
            crate::config::strategy::Strategy::BlueGreen(b) => b.clone(),
            // The file changed strategy meanwhile: the window runs out as
            // it was, with no analysis.
            _ => BlueGreen {
                auto_promote: true,
                auto_promote_after: None,
                scale_down_delay: Duration::ZERO,
                pre_promotion: Vec::new(),
                post_promotion: Vec::new(),
                on_failure: OnFailure::Revert,
            },
        };
        let preview_url = self
            .rollout_status()
            .and_then(|r| r.preview)
            .unwrap_or_default();
        let vars = Vars {
            canary: super::label(&green),
            stable: super::label(&blue),
            preview_url,
            stable_url: format!("http://{}", self.address()),
            workdir: dir,
        };
        let quiet = std::sync::Mutex::new(None);
        Some(
            self.warm_window(&b, &env.analysis_templates, &vars, &quiet)
                .await,
        )
    }

    /// The warm window after a switch, to its end: the post-promotion
    /// analysis, then `scale_down_delay`; a failure or `rollout undo`
    /// switches back to the previous release, otherwise it stops.
    async fn warm_window(
        self: &Arc<Self>,
        b: &BlueGreen,
        templates: &BTreeMap<String, AnalysisTemplate>,
        vars: &Vars,
        quiet: &std::sync::Mutex<Option<String>>,
    ) -> Result<Status, String> {
        let until = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.warm.as_ref().and_then(|w| w.until_ms));
        let stop = match until {
            Some(u) => {
                self.pause(
                    Some(Duration::from_millis(u.saturating_sub(now_ms()))),
                    quiet,
                )
                .await
            }
            None => match self.gate(&b.post_promotion, templates, vars, quiet).await {
                Some(s) => Some(s),
                None => {
                    let delay = b.scale_down_delay;
                    let until = now_ms()
                        .saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                    if let Ok(mut s) = self.state.lock()
                        && let Some(w) = s.warm.as_mut()
                    {
                        w.until_ms = Some(until);
                    }
                    self.save_state();
                    self.publish(|r| {
                        // A window a successor took over says so.
                        let resumed = if r.message.starts_with("resumed") {
                            "resumed after a restart; "
                        } else {
                            ""
                        };
                        r.phase = "Switched".into();
                        r.message = format!(
                            "{resumed}switched; the previous release stays warm for {}s: `launchway rollout undo` switches back",
                            delay.as_secs()
                        );
                    });
                    self.pause(Some(delay), quiet).await
                }
            },
        };
        if let Some(Stop::Abort(why)) = stop {
            return Err(self.switch_back(&why, b.on_failure).await);
        }
        self.end_warm_window().await;
        let desired = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.desired.clone())
            .ok_or("nothing serves")?;
        Ok(self.promoted(&desired, "blue-green switch"))
    }

    /// Back to the warm previous release at once: it never stopped.
    async fn switch_back(&self, why: &str, on_failure: OnFailure) -> String {
        let taken = match self.state.lock() {
            Ok(mut s) => s.warm.take().map(|w| {
                s.desired = Some(w.desired.clone());
                s.release_dir = Some(w.dir);
                s.retiring.clear();
                (w.desired, std::mem::replace(&mut s.replicas, w.replicas))
            }),
            Err(_) => None,
        };
        let Some((blue, mut green)) = taken else {
            return self.failed(&format!(
                "cannot switch back ({why}): the previous release is gone"
            ));
        };
        self.save_state();
        let _ = self.route().await;
        self.close_preview().await;
        self.publish(|r| {
            r.weight = 0;
            r.phase = "Aborted".into();
            r.message = format!("switched back: {why}");
        });
        stop(&mut green).await;
        if let Ok(mut a) = self.last_abort.lock() {
            *a = Some((why.to_string(), on_failure));
        }
        self.set_status(
            Health::Healthy,
            Some(&blue.release),
            &format!("serving {}", blue.release),
        );
        self.failed(&format!("switched back: {why}"))
    }

    /// Closes the warm window: the previous release finishes its
    /// requests and stops, the preview address closes.
    pub(super) async fn end_warm_window(&self) {
        let warm = self.state.lock().ok().and_then(|mut s| s.warm.take());
        if let Some(mut w) = warm {
            self.save_state();
            self.drain().await;
            stop(&mut w.replicas).await;
        }
        self.close_preview().await;
    }

    /// Waits `d` (or, `None`, until `rollout promote`), watching for
    /// commands and failures.
    async fn pause(
        &self,
        d: Option<Duration>,
        background: &std::sync::Mutex<Option<String>>,
    ) -> Option<Stop> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.interrupted(background) {
                return Some(s);
            }
            let promoted = self
                .control
                .lock()
                .map(|mut q| {
                    let had = q.contains(&Command::Promote);
                    q.retain(|c| *c != Command::Promote);
                    had
                })
                .unwrap_or(false);
            if promoted || d.is_some_and(|d| start.elapsed() >= d) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs one template to its verdict; measurements are published.
    async fn analyse(
        self: &Arc<Self>,
        name: &str,
        t: &AnalysisTemplate,
        vars: &Vars,
        background: &std::sync::Mutex<Option<String>>,
    ) -> Result<(Verdict, String), Stop> {
        let mut tally = Tally::default();
        loop {
            let (outcome, value) = match t.provider {
                Provider::Builtin if t.metric.as_deref() == Some("prediction_drift") => {
                    if let Some(s) = self.pause(Some(t.interval), background).await {
                        return Err(s);
                    }
                    let samples = self
                        .plane
                        .call(&launchway_proxy::plane::Request::Samples {
                            environment: self.name.clone(),
                        })
                        .await
                        .map(|r| r.samples)
                        .unwrap_or_default();
                    let side = |label: &str| samples.get(label).cloned().unwrap_or_default();
                    let measure = match t.statistic {
                        crate::config::strategy::DriftStatistic::Psi => analysis::psi,
                        crate::config::strategy::DriftStatistic::Ks => analysis::ks,
                    };
                    match measure(&side(&vars.stable), &side(&vars.canary)) {
                        None => (Outcome::Inconclusive, "too few answers to compare".into()),
                        Some(x) => analysis::judge(t, serde_json::json!(x), format!("{x:.4}")),
                    }
                }
                Provider::Builtin => {
                    let before = self.plane_backends().await;
                    let start = Instant::now();
                    if let Some(s) = self.pause(Some(t.interval), background).await {
                        return Err(s);
                    }
                    let after = self.plane_backends().await;
                    let w = analysis::window(
                        &before,
                        &after,
                        &vars.canary,
                        start.elapsed().as_secs_f64(),
                    );
                    let metric = t.metric.as_deref().unwrap_or("error_rate");
                    match analysis::builtin_value(metric, &w) {
                        None => (Outcome::Inconclusive, "no requests to measure".into()),
                        Some(x) => analysis::judge(t, serde_json::json!(x), format!("{x:.4}")),
                    }
                }
                _ => {
                    let (t2, v2) = (t.clone(), vars.clone());
                    let measured =
                        tokio::task::spawn_blocking(move || analysis::measure_external(&t2, &v2))
                            .await
                            .unwrap_or((Outcome::Error, "measurement panicked".into()));
                    if let Some(s) = self.pause(Some(t.interval), background).await {
                        return Err(s);
                    }
                    measured
                }
            };
            let verdict = tally.add(outcome, t);
            self.publish(|r| {
                r.measurements.push(Measurement {
                    template: name.to_string(),
                    outcome,
                    value: value.clone(),
                    at: now_ms(),
                });
                // The latest few are enough for status.
                let n = r.measurements.len();
                if n > 50 {
                    r.measurements.drain(..n - 50);
                }
            });
            if verdict != Verdict::Running {
                let condition = t
                    .success_condition
                    .as_ref()
                    .map_or_else(String::new, |c| format!(" (success: {})", c.text));
                return Ok((
                    verdict,
                    format!("analysis '{name}' measured {value}{condition}"),
                ));
            }
        }
    }

    async fn plane_backends(&self) -> Vec<launchway_proxy::plane::BackendStatus> {
        self.plane
            .call(&launchway_proxy::plane::Request::Status)
            .await
            .ok()
            .and_then(|r| {
                r.sites
                    .into_iter()
                    .find(|s| s.environment == self.name)
                    .map(|s| s.backends)
            })
            .unwrap_or_default()
    }

    /// The canary's share (saved: a successor resumes with it).
    fn set_weight(&self, w: u32) {
        if let Ok(mut s) = self.state.lock()
            && let Some(c) = s.canary.as_mut()
        {
            c.weight = w;
        }
        self.save_state();
    }

    /// The canary rollout of `desired` (something serves already).
    pub(super) async fn roll_out_canary(
        self: &Arc<Self>,
        desired: Desired,
        c: &Canary,
        templates: &BTreeMap<String, AnalysisTemplate>,
        timeout: Duration,
    ) -> Result<Status, String> {
        let stable = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.desired.clone())
            .ok_or("nothing serves to compare a canary with")?;
        self.set_status(
            Health::Progressing,
            None,
            &format!("canary of {}: starting", desired.release),
        );
        let dir = match self.prepare(&desired).await {
            Ok(d) => d,
            Err(e) => return Err(self.failed(&e)),
        };
        // A canary of this very revision left by a previous reconciler
        // resumes at its step; one of another revision is stopped first.
        let resume = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.canary.as_ref().map(|c| c.desired == desired));
        if resume == Some(false) {
            self.set_weight(0);
            let _ = self.route().await;
            let mut old = self.take_canary_replicas();
            self.save_state();
            stop(&mut old).await;
        }
        let first_step = match (resume, self.rollout_status()) {
            (Some(true), Some(r))
                if r.canary == desired.release
                    && matches!(r.phase.as_str(), "Progressing" | "Paused" | "Analyzing") =>
            {
                r.step
            }
            _ => 0,
        };
        if resume != Some(true) {
            let n = (c.canary_replicas as usize).min(desired.replicas.max(1) as usize);
            let fresh = match self.start_healthy(&desired, &dir, 0..n, timeout).await {
                Ok(f) => f,
                Err(e) => return Err(self.failed(&e)),
            };
            if let Ok(mut s) = self.state.lock() {
                s.starting.clear();
                s.canary = Some(CanarySet {
                    desired: desired.clone(),
                    replicas: fresh,
                    weight: 0,
                    policy: launchway_proxy::Policy {
                        // prediction_drift compares the answers' numbers.
                        sample_path: templates
                            .values()
                            .find(|t| t.metric.as_deref() == Some("prediction_drift"))
                            .and_then(|t| t.json_path.clone()),
                        ..policy_of(&c.traffic)
                    },
                });
            }
            self.save_state();
        }
        if let Ok(mut q) = self.control.lock() {
            q.clear();
        }
        let vars = Vars {
            canary: super::label(&desired),
            stable: super::label(&stable),
            preview_url: String::new(),
            stable_url: format!("http://{}", self.address()),
            workdir: Some(dir.clone()),
        };
        if let Ok(mut r) = self.rollout.lock() {
            let weight = self
                .state
                .lock()
                .ok()
                .and_then(|s| s.canary.as_ref().map(|c| c.weight))
                .unwrap_or(0);
            let earlier = r.take().filter(|_| first_step > 0);
            *r = Some(RolloutStatus {
                environment: self.name.clone(),
                strategy: "canary".into(),
                stable: stable.release.clone(),
                canary: desired.release.clone(),
                step: first_step,
                steps: c.steps.len(),
                weight,
                phase: "Progressing".into(),
                message: if first_step > 0 {
                    format!("resumed at step {} after a restart", first_step + 1)
                } else {
                    "canary replicas are healthy".into()
                },
                measurements: earlier
                    .as_ref()
                    .map(|e| e.measurements.clone())
                    .unwrap_or_default(),
                started_at: earlier.map_or_else(now_ms, |e| e.started_at),
                updated_at: now_ms(),
                preview: None,
                abort_routed_ms: None,
            });
        }
        self.publish(|_| {});
        let _ = self.route().await;
        if let Some(keep) = c.stable_replicas {
            self.scale_stable_down(keep as usize).await;
        }
        let background = Arc::new(std::sync::Mutex::new(None::<String>));
        let mut background_task: Option<tokio::task::JoinHandle<()>> = None;
        let mut outcome: Option<Stop> = None;
        for (i, step) in c.steps.iter().enumerate().skip(first_step) {
            if let Some((names, from)) = &c.background
                && background_task.is_none()
                && i >= *from
            {
                background_task = Some(self.start_background(names, templates, &vars, &background));
            }
            self.publish(|r| {
                r.step = i;
                r.phase = "Progressing".into();
            });
            if let Some(s) = self.interrupted(&background) {
                outcome = Some(s);
                break;
            }
            match step {
                Step::SetWeight(w) => {
                    self.set_weight(*w);
                    if let Err(e) = self.route().await {
                        outcome = Some(Stop::Abort(format!("cannot route: {e}")));
                        break;
                    }
                    self.set_status(
                        Health::Progressing,
                        None,
                        &format!("canary of {} at {w}%", desired.release),
                    );
                    self.publish(|r| {
                        r.weight = *w;
                        r.message = format!("{w}% to the canary");
                    });
                }
                Step::Pause(d) => {
                    self.publish(|r| {
                        r.phase = "Paused".into();
                        r.message = match d {
                            Some(d) => format!("paused for {}s", d.as_secs()),
                            None => "paused: `launchway rollout promote` goes on".into(),
                        };
                    });
                    if let Some(s) = self.pause(*d, &background).await {
                        outcome = Some(s);
                        break;
                    }
                }
                Step::Analysis(names) => {
                    self.publish(|r| {
                        r.phase = "Analyzing".into();
                        r.message = format!("analysis: {}", names.join(", "));
                    });
                    let mut stop_now = None;
                    for name in names {
                        let Some(t) = templates.get(name) else {
                            stop_now = Some(Stop::Abort(format!("no analysis template '{name}'")));
                            break;
                        };
                        match self.analyse(name, t, &vars, &background).await {
                            Err(s) => {
                                stop_now = Some(s);
                                break;
                            }
                            Ok((Verdict::Failed, why)) => {
                                stop_now = Some(Stop::Abort(why));
                                break;
                            }
                            Ok((Verdict::Inconclusive, why)) => {
                                // Argo's behaviour: a person decides.
                                self.publish(|r| {
                                    r.phase = "Paused".into();
                                    r.message = format!("{why}: inconclusive; `launchway rollout promote` or `abort`");
                                });
                                if let Some(s) = self.pause(None, &background).await {
                                    stop_now = Some(s);
                                    break;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                    if stop_now.is_some() {
                        outcome = stop_now;
                        break;
                    }
                }
            }
        }
        if let Some(t) = background_task.take() {
            t.abort();
        }
        if let Some(Stop::Abort(why)) = outcome {
            return Err(self.abort(&why, c.on_failure).await);
        }
        self.promote(desired, dir, timeout).await
    }

    /// Background analysis: each template again and again until the task
    /// is stopped; the first failure is the reason to abort.
    fn start_background(
        self: &Arc<Self>,
        names: &[String],
        templates: &BTreeMap<String, AnalysisTemplate>,
        vars: &Vars,
        failed: &Arc<std::sync::Mutex<Option<String>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (this, vars, failed) = (self.clone(), vars.clone(), failed.clone());
        let chosen: Vec<(String, AnalysisTemplate)> = names
            .iter()
            .filter_map(|n| Some((n.clone(), templates.get(n)?.clone())))
            .collect();
        tokio::spawn(async move {
            let quiet = std::sync::Mutex::new(None);
            loop {
                for (name, t) in &chosen {
                    if let Ok((Verdict::Failed, why)) = this.analyse(name, t, &vars, &quiet).await {
                        if let Ok(mut f) = failed.lock() {
                            *f = Some(format!("background {why}"));
                        }
                        return;
                    }
                }
            }
        })
    }

    /// The canary's replicas, taken out of the state (no canary left).
    fn take_canary_replicas(&self) -> Vec<Replica> {
        self.state
            .lock()
            .ok()
            .and_then(|mut s| s.canary.take())
            .map(|c| c.replicas)
            .unwrap_or_default()
    }

    /// Traffic to stable at once, the canary stopped.
    async fn abort(&self, why: &str, on_failure: OnFailure) -> String {
        let decided = Instant::now();
        self.set_weight(0);
        let _ = self.route().await;
        // From the decision to the data plane routing nothing to the canary.
        let routed_ms = decided.elapsed().as_secs_f64() * 1000.0;
        self.publish(|r| r.abort_routed_ms = Some(routed_ms));
        let mut canary = self.take_canary_replicas();
        self.save_state();
        self.publish(|r| {
            r.weight = 0;
            r.phase = "Aborted".into();
            r.message = why.to_string();
        });
        stop(&mut canary).await;
        self.restore_stable().await;
        if let Ok(mut a) = self.last_abort.lock() {
            *a = Some((why.to_string(), on_failure));
        }
        let msg = self.failed(&format!("canary aborted: {why}"));
        if on_failure == OnFailure::Hold
            && let Ok(mut s) = self.state.lock()
        {
            // Held: Degraded until a new commit, not "all is well".
            s.status.health = Health::Degraded;
            s.status.message = format!(
                "last deployment failed: canary aborted: {why}; held — the stable release serves; a new commit retries"
            );
        }
        msg
    }

    /// The end of a rollout that succeeded: recorded, Healthy.
    fn promoted(&self, desired: &Desired, how: &str) -> Status {
        self.publish(|r| {
            r.weight = 100;
            r.phase = "Promoted".into();
            r.message = format!("{} serves all traffic", desired.release);
        });
        self.set_status(
            Health::Healthy,
            Some(&desired.release),
            &format!("serving {} ({how})", desired.release),
        );
        self.save_state();
        self.status()
    }

    /// Keeps `keep` stable replicas while the canary runs (`stable_replicas`):
    /// the others leave the route first, finish their requests, and stop.
    async fn scale_stable_down(&self, keep: usize) {
        let mut extra = match self.state.lock() {
            Ok(mut s) if s.replicas.len() > keep => s.replicas.split_off(keep.max(1)),
            _ => return,
        };
        self.save_state();
        let _ = self.route().await;
        self.drain().await;
        stop(&mut extra).await;
    }

    /// After an abort: the stable release back to its full replica count.
    async fn restore_stable(&self) {
        let Some((d, dir, have)) = self
            .state
            .lock()
            .ok()
            .and_then(|s| Some((s.desired.clone()?, s.release_dir.clone()?, s.replicas.len())))
        else {
            return;
        };
        if have >= d.replicas as usize {
            return;
        }
        match self
            .start_healthy(
                &d,
                &dir,
                have..d.replicas as usize,
                Duration::from_secs(120),
            )
            .await
        {
            Ok(more) => {
                if let Ok(mut s) = self.state.lock() {
                    s.replicas.extend(more);
                    s.starting.clear();
                }
                self.save_state();
                let _ = self.route().await;
            }
            Err(e) => eprintln!(
                "{}: the stable release could not scale back up: {e}",
                self.name
            ),
        }
    }

    /// The canary becomes what serves: the rest of its replicas start,
    /// traffic switches to them all, the old release drains and stops.
    async fn promote(
        &self,
        desired: Desired,
        dir: PathBuf,
        timeout: Duration,
    ) -> Result<Status, String> {
        let have = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.canary.as_ref().map(|c| c.replicas.len()))
            .unwrap_or(0);
        let extra = match self
            .start_healthy(&desired, &dir, have..desired.replicas as usize, timeout)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                return Err(self
                    .abort(&format!("cannot scale up: {e}"), OnFailure::Revert)
                    .await);
            }
        };
        let mut new = self.take_canary_replicas();
        new.extend(extra);
        let mut old = self.make_serving(&desired, &dir, new);
        let _ = self.route().await;
        self.drain().await;
        stop(&mut old).await;
        if let Ok(mut s) = self.state.lock() {
            s.retiring.clear();
        }
        Ok(self.promoted(&desired, "canary promoted"))
    }
}

impl LocalEnvironment {
    fn preview_site(&self) -> String {
        format!("{}@preview", self.name)
    }

    async fn close_preview(&self) {
        let _ = self
            .plane
            .call(&launchway_proxy::plane::Request::Close {
                environment: self.preview_site(),
            })
            .await;
    }

    /// Runs `names` to their verdicts; the first failure (or a command)
    /// stops.
    async fn gate(
        self: &Arc<Self>,
        names: &[String],
        templates: &BTreeMap<String, AnalysisTemplate>,
        vars: &Vars,
        quiet: &std::sync::Mutex<Option<String>>,
    ) -> Option<Stop> {
        for name in names {
            let Some(t) = templates.get(name) else {
                return Some(Stop::Abort(format!("no analysis template '{name}'")));
            };
            self.publish(|r| {
                r.phase = "Analyzing".into();
                r.message = format!("analysis: {name}");
            });
            match self.analyse(name, t, vars, quiet).await {
                Err(s) => return Some(s),
                Ok((Verdict::Failed, why)) => return Some(Stop::Abort(why)),
                Ok((Verdict::Inconclusive, why)) => {
                    self.publish(|r| {
                        r.phase = "Paused".into();
                        r.message =
                            format!("{why}: inconclusive; `launchway rollout promote` or `abort`");
                    });
                    if let Some(s) = self.pause(None, quiet).await {
                        return Some(s);
                    }
                }
                Ok(_) => {}
            }
        }
        None
    }

    /// The blue-green rollout of `desired` (something serves already).
    pub(super) async fn roll_out_blue_green(
        self: &Arc<Self>,
        desired: Desired,
        b: &BlueGreen,
        templates: &BTreeMap<String, AnalysisTemplate>,
        timeout: Duration,
    ) -> Result<Status, String> {
        let (stable, stable_dir) = self
            .state
            .lock()
            .ok()
            .and_then(|s| Some((s.desired.clone()?, s.release_dir.clone()?)))
            .ok_or("nothing serves to switch from")?;
        self.set_status(
            Health::Progressing,
            None,
            &format!("blue-green: starting {}", desired.release),
        );
        let dir = match self.prepare(&desired).await {
            Ok(d) => d,
            Err(e) => return Err(self.failed(&e)),
        };
        // The green replicas a previous reconciler started for this very
        // revision are taken over (its rollout resumes before the switch);
        // anything else it left starts over.
        let left = self.state.lock().ok().and_then(|mut s| s.canary.take());
        let resumed = match left {
            Some(c) if c.desired == desired && c.replicas.iter().all(|r| r.serving) => {
                Some(c.replicas)
            }
            Some(c) => {
                let mut old = c.replicas;
                self.save_state();
                stop(&mut old).await;
                None
            }
            None => None,
        };
        let earlier = self
            .rollout_status()
            .filter(|r| resumed.is_some() && r.canary == desired.release && is_live(&r.phase));
        let green = match resumed {
            Some(g) => g,
            None => match self
                .start_healthy(&desired, &dir, 0..desired.replicas as usize, timeout)
                .await
            {
                Ok(g) => g,
                Err(e) => return Err(self.failed(&e)),
            },
        };
        let green_label = super::label(&desired);
        let specs: Vec<launchway_proxy::plane::BackendSpec> = green
            .iter()
            .map(|r| launchway_proxy::plane::BackendSpec {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], r.port)),
                weight: 1,
                revision: green_label.clone(),
            })
            .collect();
        if let Ok(mut s) = self.state.lock() {
            s.starting.clear();
            s.canary = Some(CanarySet {
                desired: desired.clone(),
                replicas: green,
                weight: 0,
                policy: launchway_proxy::Policy::default(),
            });
        }
        self.save_state();
        if let Ok(mut q) = self.control.lock() {
            q.clear();
        }
        let preview_url = match super::open(&self.plane, &self.preview_site(), "127.0.0.1:0").await
        {
            Ok(a) => {
                let _ = self
                    .plane
                    .call(&launchway_proxy::plane::Request::Route {
                        environment: self.preview_site(),
                        backends: specs,
                        canary: None,
                        policy: launchway_proxy::Policy::default(),
                    })
                    .await;
                format!("http://{a}")
            }
            Err(e) => {
                return Err(self
                    .abort(&format!("no preview address: {e}"), b.on_failure)
                    .await);
            }
        };
        let vars = Vars {
            canary: green_label,
            stable: super::label(&stable),
            preview_url: preview_url.clone(),
            stable_url: format!("http://{}", self.address()),
            workdir: Some(dir.clone()),
        };
        if let Ok(mut r) = self.rollout.lock() {
            *r = Some(RolloutStatus {
                environment: self.name.clone(),
                strategy: "blue-green".into(),
                stable: stable.release.clone(),
                canary: desired.release.clone(),
                step: 0,
                steps: 2,
                weight: 0,
                phase: "Progressing".into(),
                message: if earlier.is_some() {
                    format!("resumed after a restart; the new release answers at {preview_url}")
                } else {
                    format!("the new release answers at {preview_url}")
                },
                measurements: earlier
                    .as_ref()
                    .map(|e| e.measurements.clone())
                    .unwrap_or_default(),
                started_at: earlier.as_ref().map_or_else(now_ms, |e| e.started_at),
                updated_at: now_ms(),
                preview: Some(preview_url.clone()),
                abort_routed_ms: None,
            });
        }
        self.publish(|_| {});
        let quiet = std::sync::Mutex::new(None);
        let before_switch = match self.gate(&b.pre_promotion, templates, &vars, &quiet).await {
            Some(s) => Some(s),
            None if !b.auto_promote => {
                self.publish(|r| {
                    r.phase = "Paused".into();
                    r.message = format!(
                        "preview at {preview_url}; `launchway rollout promote` switches to it"
                    );
                });
                self.pause(None, &quiet).await
            }
            None => match b.auto_promote_after {
                Some(d) => {
                    self.publish(|r| {
                        r.phase = "Paused".into();
                        r.message =
                            format!("switching in {}s (preview at {preview_url})", d.as_secs());
                    });
                    self.pause(Some(d), &quiet).await
                }
                None => None,
            },
        };
        if let Some(Stop::Abort(why)) = before_switch {
            self.close_preview().await;
            return Err(self.abort(&why, b.on_failure).await);
        }
        // The switch: one route change; blue stays warm (saved as such,
        // so a successor keeps the window).
        let green = self.take_canary_replicas();
        let blue = self.make_serving(&desired, &dir, green);
        if let Ok(mut s) = self.state.lock() {
            s.retiring.clear();
            s.warm = Some(Warm {
                desired: stable.clone(),
                dir: stable_dir,
                replicas: blue,
                until_ms: None,
            });
        }
        self.save_state();
        let _ = self.route().await;
        self.set_status(
            Health::Progressing,
            Some(&desired.release),
            &format!(
                "switched to {}; the previous release stays warm for {}s",
                desired.release,
                b.scale_down_delay.as_secs()
            ),
        );
        self.publish(|r| {
            r.step = 1;
            r.weight = 100;
            r.phase = "Switched".into();
            r.message = format!(
                "switched; the previous release stays warm for {}s: `launchway rollout undo` switches back",
                b.scale_down_delay.as_secs()
            );
        });
        self.warm_window(b, templates, &vars, &quiet).await
    }
}
