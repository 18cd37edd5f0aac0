//! One launcher process per job: it enters the job's sandbox once — its
//! cgroup, its Landlock domain — and starts every step of the job from
//! there. So the steps of one job share a domain (a later step can signal
//! the server an earlier one left in the background, as on GitHub), jobs
//! stay apart from each other and from the agent, and a step costs a
//! `fork`+`exec` rather than a sandbox built again.
//!
//! The agent talks to its job's launcher over a socket pair (the
//! launcher's standard input): each request names the command, its
//! directory and environment, and carries the two pipes for its output
//! (`SCM_RIGHTS`); the launcher answers with the pid, and later with the
//! wait status. When the socket closes — the job ended, or the agent died,
//! even by SIGKILL — the launcher kills everything the job started.
//!
//! Frames: a 4-byte little-endian length, then that much JSON.

use super::procs;
use super::sandbox::{self, StepJob};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// The most a frame may hold (a step's environment can be large).
const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Start {
    argv: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

/// What a spare launcher learns last: which job it is for.
#[derive(Debug, Serialize, Deserialize)]
struct Assign {
    job_dir: PathBuf,
    tracking_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    /// A spare launcher is in its cgroup with its rules built, and waits
    /// for its job ([`Assign`]).
    Standby,
    /// The launcher is in the job's sandbox and takes requests.
    Ready,
    /// It could not enter the sandbox (why); or a step did not start.
    Failed {
        message: String,
        not_found: bool,
    },
    Started {
        pid: u32,
    },
    Exited {
        pid: u32,
        status: i32,
    },
}

fn send_frame(sock: &UnixStream, body: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::other("frame too large"))?
        .to_le_bytes();
    let mut w = sock;
    if fds.is_empty() {
        w.write_all(&len)?;
    } else {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(std::io::Error::other("too many descriptors"));
        }
        let n = sendmsg(
            sock,
            &[IoSlice::new(&len)],
            &mut control,
            SendFlags::empty(),
        )?;
        w.write_all(&len[n..])?;
    }
    w.write_all(body)
}

/// A frame and the descriptors that came with it; `None` at the end.
fn recv_frame(sock: &UnixStream) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if got.bytes == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    let mut r = sock;
    r.read_exact(&mut len[got.bytes..])?;
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut body = vec![0; n];
    r.read_exact(&mut body)?;
    Ok(Some((body, fds)))
}

fn answer(sock: &Mutex<UnixStream>, a: &Answer) -> std::io::Result<()> {
    let s = sock
        .lock()
        .map_err(|_| std::io::Error::other("socket lock poisoned"))?;
    send_answer(&s, a)
}

fn send_answer(sock: &UnixStream, a: &Answer) -> std::io::Result<()> {
    let body = serde_json::to_vec(a).map_err(std::io::Error::other)?;
    send_frame(sock, &body, &[])
}

/// Waits for every step the launcher started and says how each ended;
/// with no step running, sleeps until the next one starts.
fn reap(writer: &Mutex<UnixStream>, running: &Mutex<HashSet<u32>>) {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        let (pid, status) = match waitpid(nix::unistd::Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, (code & 0xff) << 8),
            Ok(WaitStatus::Signaled(pid, sig, core)) => {
                (pid, sig as i32 | if core { 0x80 } else { 0 })
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                std::thread::park();
                continue;
            }
            Err(_) => return,
        };
        let Ok(pid) = u32::try_from(pid.as_raw()) else {
            continue;
        };
        if let Ok(mut r) = running.lock() {
            r.remove(&pid);
        }
        if answer(writer, &Answer::Exited { pid, status }).is_err() {
            return;
        }
    }
}

/// `launchway sandbox-exec`: the launcher of one job, on the socket that
/// is its standard input. Without `job_dir` it is a spare: it joins its
/// cgroup and builds its rules, says [`Answer::Standby`] and waits to be
/// told its job. Returns when the agent closes the socket (or dies),
/// after killing everything the job started.
pub fn serve(deny: &[PathBuf], job_dir: Option<&Path>, job: &StepJob) -> Result<(), ServeError> {
    let ctl = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(ServeError::Control)?;
    let writer = Arc::new(Mutex::new(ctl.try_clone().map_err(ServeError::Control)?));
    // The agent learns why before the launcher exits.
    let fail = |e: ServeError| {
        let _ = answer(
            &writer,
            &Answer::Failed {
                message: e.to_string(),
                not_found: false,
            },
        );
        e
    };
    let mut job = job.clone();
    let prepared = sandbox::prepare(deny, &job).map_err(|e| fail(e.into()))?;
    let job_dir = match job_dir {
        Some(d) => d.to_path_buf(),
        None => {
            answer(&writer, &Answer::Standby).map_err(ServeError::Control)?;
            // Nothing to do when the agent lets its spare go unused.
            let Ok(Some((body, _))) = recv_frame(&ctl) else {
                return Ok(());
            };
            let assign: Assign =
                serde_json::from_slice(&body).map_err(|e| fail(ServeError::NotAJob(e)))?;
            job.tracking_id = assign.tracking_id;
            assign.job_dir
        }
    };
    let job_dir = job_dir.as_path();
    let kill_all = prepared.finish(job_dir).map_err(|e| fail(e.into()))?;
    answer(&writer, &Answer::Ready).map_err(ServeError::Control)?;
    let running: Arc<Mutex<HashSet<u32>>> = Arc::default();
    // One thread reaps every step (they are this process's only children).
    let reaper = {
        let (writer, running) = (writer.clone(), running.clone());
        std::thread::spawn(move || reap(&writer, &running))
    };
    while let Ok(Some((body, fds))) = recv_frame(&ctl) {
        let Ok(start) = serde_json::from_slice::<Start>(&body) else {
            break;
        };
        let Ok::<[OwnedFd; 2], _>([out, err]) = fds.try_into() else {
            break;
        };
        let Some((prog, args)) = start.argv.split_first() else {
            break;
        };
        let mut cmd = std::process::Command::new(prog);
        cmd.args(args)
            .current_dir(&start.cwd)
            .env_clear()
            .envs(start.env)
            .env("TMPDIR", job_dir.join("temp"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        if !job.tracking_id.is_empty() {
            cmd.env(procs::TRACKING_VAR, &job.tracking_id);
        }
        // The answer that it started goes out before the reaper can say
        // that it ended: the reaper needs the socket to say so.
        let Ok(sock) = writer.lock() else { break };
        let spawned = cmd.spawn();
        // This process's copies of the output pipes close here, so the
        // agent sees the end of the output when the step's processes end.
        drop(cmd);
        match spawned {
            Ok(child) => {
                let pid = child.id();
                if let Ok(mut r) = running.lock() {
                    r.insert(pid);
                }
                let started = send_answer(&sock, &Answer::Started { pid });
                drop(sock);
                reaper.thread().unpark();
                if started.is_err() {
                    break;
                }
            }
            Err(e) => {
                let a = Answer::Failed {
                    not_found: e.kind() == std::io::ErrorKind::NotFound,
                    message: e.to_string(),
                };
                if send_answer(&sock, &a).is_err() {
                    break;
                }
            }
        }
    }
    // The job is over, or its agent is gone: nothing of it stays.
    let groups: Vec<u32> = running
        .lock()
        .map(|r| r.iter().copied().collect())
        .unwrap_or_default();
    for pid in groups {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    match kill_all {
        // Last: this process is in the cgroup too.
        Some(mut f) => {
            let _ = f.write_all(b"1");
        }
        None if !job.tracking_id.is_empty() => {
            procs::kill_marked(
                &format!("{}={}\0", procs::TRACKING_VAR, job.tracking_id),
                false,
            );
        }
        None => {}
    }
    Ok(())
}

/// Why a launcher stopped before serving its job.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Its socket to the agent (standard input) failed.
    #[error("sandbox-exec: the agent's socket: {0}")]
    Control(std::io::Error),
    /// It could not enter the job's sandbox.
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    /// A spare was told something that is not a job.
    #[error("sandbox-exec: not a job: {0}")]
    NotAJob(serde_json::Error),
}

/// What one request got back.
enum Reply {
    Standby,
    Ready,
    Started(
        u32,
        tokio::sync::oneshot::Receiver<std::io::Result<ExitStatus>>,
    ),
    Failed(std::io::Error),
}

/// Who waits for the launcher's next replies, in the order the requests
/// went out (`None` once the launcher is gone).
type Pending = Mutex<Option<VecDeque<tokio::sync::oneshot::Sender<Reply>>>>;

/// A running launcher. The socket is the runtime's (non-blocking): a step
/// starts and ends without a thread of ours in between.
struct Conn {
    sock: tokio::net::UnixStream,
    /// One request on the socket at a time, queued in `pending` in order.
    sending: tokio::sync::Mutex<()>,
    pending: Pending,
    process: Mutex<std::process::Child>,
}

impl Conn {
    /// Starts `launchway sandbox-exec ARGS`; its first answer (whether it
    /// could enter the sandbox) comes on the receiver.
    fn start(
        exe: &Path,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<(Arc<Conn>, tokio::sync::oneshot::Receiver<Reply>)> {
        let (ours, theirs) = UnixStream::pair()?;
        let process = std::process::Command::new(exe)
            .arg("sandbox-exec")
            .args(args)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()?;
        ours.set_nonblocking(true)?;
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let conn = Arc::new(Conn {
            sock: tokio::net::UnixStream::from_std(ours)?,
            sending: tokio::sync::Mutex::new(()),
            pending: Mutex::new(Some(VecDeque::from([first_tx]))),
            process: Mutex::new(process),
        });
        tokio::spawn(read_answers(conn.clone()));
        Ok((conn, first_rx))
    }

    /// Closes the socket (the launcher then kills what the job left and
    /// exits) and waits for the launcher, five seconds at most. Blocks.
    fn end(&self) {
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
        if let Ok(mut p) = self.process.lock() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match p.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if std::time::Instant::now() > deadline => {
                        let _ = p.kill();
                        let _ = p.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        }
    }
}

/// What a launcher's first answer means for whoever waits for `want`.
async fn first_answer(
    rx: tokio::sync::oneshot::Receiver<Reply>,
    standby: bool,
) -> std::io::Result<()> {
    match rx.await {
        Ok(Reply::Ready) if !standby => Ok(()),
        Ok(Reply::Standby) if standby => Ok(()),
        Ok(Reply::Failed(e)) => Err(e),
        Ok(_) => Err(std::io::Error::other("launcher out of step")),
        Err(_) => Err(gone()),
    }
}

/// A launcher started before its job is known: in a cgroup of its own
/// (`job-spare-N`), its Landlock rules built (one rule per sibling along
/// the way to the agent's work dir: the slow part), waiting to be told
/// its job's directory. Taking it takes the launcher's start, the cgroup
/// move (an RCU grace period, 8-22 ms here) and the rules off the job's
/// first step.
pub struct Spare {
    conn: Arc<Conn>,
    /// Its cgroup, which becomes the job's.
    pub cgroup: Option<PathBuf>,
    /// The listings its rules were built from.
    listings: Listings,
}

/// The modification times of the directories whose listings a launcher's
/// rules come from (each directory above the agent's work dir: their other
/// entries get a rule each). A spare is used only while they are unchanged,
/// so a job sees what it would with a launcher started at its start.
#[derive(Debug, PartialEq, Eq)]
struct Listings(Vec<(PathBuf, i64, i64)>);

impl Listings {
    /// Now; `None` when a directory cannot be read, or changed so lately
    /// that a change within the same clock tick would not show.
    fn now(work: &Path) -> Option<Listings> {
        use std::os::unix::fs::MetadataExt;
        let work = work.canonicalize().ok()?;
        let now = std::time::SystemTime::now();
        let mut dirs = Vec::new();
        for dir in work.ancestors().skip(1) {
            let m = std::fs::metadata(dir).ok()?;
            let age = now.duration_since(m.modified().ok()?).ok()?;
            if age < std::time::Duration::from_millis(50) {
                return None;
            }
            dirs.push((dir.to_path_buf(), m.mtime(), m.mtime_nsec()));
        }
        Some(Listings(dirs))
    }
}

impl Spare {
    /// Whether a job can have it: its launcher still answers, and the
    /// directories its rules came from are as they are `now`.
    fn usable(&self, now: Option<&Listings>) -> bool {
        self.conn.pending.lock().is_ok_and(|p| p.is_some()) && now == Some(&self.listings)
    }

    /// Ends an unused spare and removes its cgroup. Blocks.
    fn discard(self) {
        self.conn.end();
        if let Some(cg) = &self.cgroup {
            procs::kill_cgroup(cg);
        }
    }
}

/// How often an idle agent looks whether its spare is still current.
const SPARE_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// Most spares an agent keeps, whatever its `--max-jobs`: each is an idle
/// process and a cgroup.
const MAX_SPARES: usize = 4;

/// The agent's spare launchers: one kept ready per job it can run at once
/// (up to [`MAX_SPARES`]), another started as soon as one is taken.
pub struct Spares {
    inner: Arc<SparesInner>,
}

struct SparesInner {
    exe: PathBuf,
    work: PathBuf,
    landlock: bool,
    tracker: procs::Tracker,
    /// How many to keep ready.
    want: usize,
    ready: Mutex<Vec<Spare>>,
    /// A spare is being started.
    filling: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    next: std::sync::atomic::AtomicU64,
}

impl Spares {
    /// Starts the spares for an agent that runs up to `slots` jobs at
    /// once, and a task that replaces those grown old. Call on the runtime.
    pub fn start(
        exe: PathBuf,
        work: PathBuf,
        landlock: bool,
        tracker: procs::Tracker,
        slots: usize,
    ) -> Spares {
        let spares = Spares {
            inner: Arc::new(SparesInner {
                exe,
                work,
                landlock,
                tracker,
                want: slots.clamp(1, MAX_SPARES),
                ready: Mutex::new(Vec::new()),
                filling: false.into(),
                closed: false.into(),
                next: 0.into(),
            }),
        };
        spares.fill();
        let weak = Arc::downgrade(&spares.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SPARE_CHECK).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                // Outdated or dead spares are replaced before a job
                // wants one.
                let spares = Spares { inner };
                spares.discard(spares.outdated());
                spares.fill();
            }
        });
        spares
    }

    /// A spare, if one is ready and current; another starts at once.
    pub fn take(&self) -> Option<Spare> {
        self.discard(self.outdated());
        let spare = self.inner.ready.lock().ok().and_then(|mut r| r.pop());
        self.fill();
        spare
    }

    /// Takes the spares grown old (or whose launcher died) out of the
    /// ready ones.
    fn outdated(&self) -> Vec<Spare> {
        // Listed once for all of them.
        let now = Listings::now(&self.inner.work);
        self.inner
            .ready
            .lock()
            .map(|mut r| r.extract_if(.., |s| !s.usable(now.as_ref())).collect())
            .unwrap_or_default()
    }

    fn discard(&self, spares: Vec<Spare>) {
        if !spares.is_empty() {
            tokio::task::spawn_blocking(move || spares.into_iter().for_each(Spare::discard));
        }
    }

    /// Starts a spare unless enough are ready or one is being started
    /// (one at a time: each then starts the next).
    fn fill(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let inner = self.inner.clone();
        let full = inner.ready.lock().map_or(true, |r| r.len() >= inner.want);
        if full || inner.closed.load(SeqCst) || inner.filling.swap(true, SeqCst) {
            return;
        }
        tokio::spawn(async move {
            // Before the launcher lists them: a change after this shows.
            let mut listings = Listings::now(&inner.work);
            for _ in 0..5 {
                if listings.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                listings = Listings::now(&inner.work);
            }
            let Some(listings) = listings else {
                // The next job starts its own launcher.
                inner.filling.store(false, SeqCst);
                return;
            };
            let n = inner.next.fetch_add(1, SeqCst);
            let cgroup = inner.tracker.cgroup(&format!("job-spare-{n}"));
            let started = async {
                let args = launcher_args(
                    &inner.work,
                    &["--standby".as_ref()],
                    cgroup.as_deref(),
                    inner.landlock,
                );
                let (conn, first) = Conn::start(&inner.exe, &args)?;
                first_answer(first, true).await.map(|()| conn)
            }
            .await;
            let spare = match started {
                Ok(conn) => Spare {
                    conn,
                    cgroup,
                    listings,
                },
                Err(e) => {
                    // The next job starts its own launcher, and says why
                    // it could not when that fails too.
                    eprintln!("agent: a spare launcher did not start: {e}");
                    if let Some(cg) = cgroup {
                        tokio::task::spawn_blocking(move || procs::kill_cgroup(&cg));
                    }
                    inner.filling.store(false, SeqCst);
                    return;
                }
            };
            let unused = match inner.ready.lock() {
                Ok(mut ready) if ready.len() < inner.want && !inner.closed.load(SeqCst) => {
                    ready.push(spare);
                    None
                }
                _ => Some(spare),
            };
            inner.filling.store(false, SeqCst);
            match unused {
                Some(s) => {
                    tokio::task::spawn_blocking(move || s.discard());
                }
                None => Spares { inner }.fill(),
            }
        });
    }

    /// Ends the spares (the agent stops). Blocks.
    pub fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let ready = self
            .inner
            .ready
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        ready.into_iter().for_each(Spare::discard);
    }
}

/// The agent's side: starts the job's launcher on the first step (or
/// assigns it a spare) and hands it each step.
pub struct Launcher {
    inner: Arc<Inner>,
}

struct Inner {
    exe: PathBuf,
    work: PathBuf,
    job: StepJob,
    /// A spare launcher to use instead of starting one.
    spare: Mutex<Option<Spare>>,
    conn: Mutex<Option<Arc<Conn>>>,
    /// Held while the launcher starts, so only one does.
    starting: tokio::sync::Mutex<()>,
}

impl Launcher {
    /// The launcher of a job, with a spare to take over when there is one
    /// (then `job.cgroup` must be the spare's).
    pub fn new(exe: PathBuf, work: PathBuf, job: StepJob, spare: Option<Spare>) -> Launcher {
        Launcher {
            inner: Arc::new(Inner {
                exe,
                work,
                job,
                spare: Mutex::new(spare),
                conn: Mutex::new(None),
                starting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Starts the launcher now (or tells the spare its job), for the job
    /// whose directory will be `job_dir`: its start then overlaps the
    /// job's source preparation instead of delaying the first step. A
    /// failure shows again at the first step, which tries once more.
    pub fn prestart(&self, job_dir: PathBuf) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if launchway_runner::private::dir(&job_dir).is_ok() {
                let _ = inner.conn(&job_dir).await;
            }
        });
    }

    /// Ends the launcher (which kills what the job left) and waits for it.
    /// Call it off the runtime's threads (it blocks).
    pub fn close(&self) {
        // A launcher still starting is let finish first, then ended.
        let _started = self.inner.starting.blocking_lock();
        if let Some(spare) = self.inner.spare.lock().ok().and_then(|mut s| s.take()) {
            spare.conn.end();
        }
        let conn = self.inner.conn.lock().ok().and_then(|mut c| c.take());
        if let Some(conn) = conn {
            conn.end();
        }
    }
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("launcher lock poisoned")
}

impl Inner {
    /// The launcher, if it runs already.
    fn running(&self) -> Option<Arc<Conn>> {
        self.conn.lock().ok().and_then(|c| c.clone())
    }

    /// The job's launcher, started (or taken from the spare) on first use.
    async fn conn(&self, job_dir: &Path) -> std::io::Result<Arc<Conn>> {
        if let Some(c) = self.running() {
            return Ok(c);
        }
        let _one = self.starting.lock().await;
        if let Some(c) = self.running() {
            return Ok(c);
        }
        let spare = self.spare.lock().map_err(|_| poisoned())?.take();
        let taken = match spare {
            Some(spare) => match assign(&spare.conn, job_dir, &self.job.tracking_id).await {
                Ok(()) => Some(spare.conn),
                Err(e) => {
                    // A spare that died waiting: the job starts its own.
                    eprintln!("agent: the spare launcher failed ({e}); starting one for the job");
                    let dead = spare.conn;
                    tokio::task::spawn_blocking(move || dead.end());
                    None
                }
            },
            None => None,
        };
        let conn = match taken {
            Some(conn) => conn,
            None => {
                let args = launcher_args(
                    &self.work,
                    &[
                        "--job-dir".as_ref(),
                        job_dir.as_os_str(),
                        "--track".as_ref(),
                        self.job.tracking_id.as_ref(),
                    ],
                    self.job.cgroup.as_deref(),
                    self.job.landlock,
                );
                let (conn, first) = Conn::start(&self.exe, &args)?;
                first_answer(first, false).await?;
                conn
            }
        };
        *self.conn.lock().map_err(|_| poisoned())? = Some(conn.clone());
        Ok(conn)
    }
}

/// `sandbox-exec`'s arguments (the one shape `sandbox_exec_fast` reads):
/// the work dir denied, what the launcher is for (its job, or `--standby`),
/// its cgroup, and whether it uses Landlock.
fn launcher_args<'a>(
    work: &'a Path,
    what: &[&'a std::ffi::OsStr],
    cgroup: Option<&'a Path>,
    landlock: bool,
) -> Vec<&'a std::ffi::OsStr> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--deny".as_ref(), work.as_os_str()];
    args.extend_from_slice(what);
    if let Some(cg) = cgroup {
        args.extend(["--cgroup".as_ref(), cg.as_os_str()]);
    }
    if !landlock {
        args.push("--no-landlock".as_ref());
    }
    args
}

/// Tells a spare launcher its job; returns once it is in the job's sandbox.
async fn assign(conn: &Conn, job_dir: &Path, tracking_id: &str) -> std::io::Result<()> {
    let assign = Assign {
        job_dir: job_dir.to_path_buf(),
        tracking_id: tracking_id.to_string(),
    };
    let body = serde_json::to_vec(&assign).map_err(std::io::Error::other)?;
    let ready = send(conn, &body, None).await?;
    first_answer(ready, false).await
}

/// Sends one start request; the launcher's reply comes on the receiver.
async fn request(
    conn: &Conn,
    start: &Start,
) -> std::io::Result<(
    std::io::PipeReader,
    std::io::PipeReader,
    tokio::sync::oneshot::Receiver<Reply>,
)> {
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let body = serde_json::to_vec(start).map_err(std::io::Error::other)?;
    let rx = send(conn, &body, Some([out_w.as_fd(), err_w.as_fd()])).await?;
    drop((out_w, err_w));
    Ok((out_r, err_r, rx))
}

/// Sends one frame (with the step's two output pipes, if any); the
/// launcher's reply comes on the receiver.
async fn send(
    conn: &Conn,
    body: &[u8],
    fds: Option<[BorrowedFd<'_>; 2]>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<Reply>> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::other("frame too large"))?
        .to_le_bytes();
    let frame = [&len[..], body].concat();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The queue's order is the order of the requests on the socket.
    let _one = conn.sending.lock().await;
    conn.pending
        .lock()
        .map_err(|_| poisoned())?
        .as_mut()
        .ok_or_else(gone)?
        .push_back(tx);
    // The descriptors go with the first bytes; the rest follows.
    let mut sent = 0;
    while sent < frame.len() {
        conn.sock.writable().await?;
        let r = conn
            .sock
            .try_io(tokio::io::Interest::WRITABLE, || match fds {
                Some(fds) if sent == 0 => {
                    let mut space =
                        [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
                    let mut control = SendAncillaryBuffer::new(&mut space);
                    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                        return Err(std::io::Error::other("too many descriptors"));
                    }
                    sendmsg(
                        &conn.sock,
                        &[IoSlice::new(&frame)],
                        &mut control,
                        SendFlags::NOSIGNAL,
                    )
                    .map_err(std::io::Error::from)
                }
                _ => rustix::net::send(&conn.sock, &frame[sent..], SendFlags::NOSIGNAL)
                    .map_err(std::io::Error::from),
            });
        match r {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rx)
}

fn gone() -> std::io::Error {
    std::io::Error::other("the job's launcher stopped (see the agent's log)")
}

/// The launcher's answers, in order, read on the runtime: replies to
/// requests go to the oldest waiter in `pending`, wait statuses to whoever
/// waits for that process. Answers carry no descriptors.
async fn read_answers(conn: Arc<Conn>) {
    let mut waiters: HashMap<u32, tokio::sync::oneshot::Sender<std::io::Result<ExitStatus>>> =
        HashMap::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    'read: loop {
        while buf.len() >= 4 {
            let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if n > MAX_FRAME {
                break 'read;
            }
            if buf.len() < 4 + n {
                break;
            }
            let taken = answer_of(&buf[4..4 + n], &mut waiters, &conn.pending);
            buf.drain(..4 + n);
            if !taken {
                break 'read;
            }
        }
        if conn.sock.readable().await.is_err() {
            break;
        }
        match conn.sock.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    // Waiters dropped here learn that the launcher is gone; later
    // requests are refused.
    if let Ok(mut p) = conn.pending.lock() {
        *p = None;
    }
}

/// Hands one answer to whoever waits for it; `false` when it makes no sense.
fn answer_of(
    body: &[u8],
    waiters: &mut HashMap<u32, tokio::sync::oneshot::Sender<std::io::Result<ExitStatus>>>,
    pending: &Pending,
) -> bool {
    let Ok(a) = serde_json::from_slice::<Answer>(body) else {
        return false;
    };
    let reply = match a {
        Answer::Standby => Reply::Standby,
        Answer::Ready => Reply::Ready,
        Answer::Failed { message, not_found } => Reply::Failed(if not_found {
            std::io::Error::new(std::io::ErrorKind::NotFound, message)
        } else {
            std::io::Error::other(message)
        }),
        Answer::Started { pid } => {
            let (wtx, wrx) = tokio::sync::oneshot::channel();
            waiters.insert(pid, wtx);
            Reply::Started(pid, wrx)
        }
        Answer::Exited { pid, status } => {
            if let Some(w) = waiters.remove(&pid) {
                let _ = w.send(Ok(ExitStatus::from_raw(status)));
            }
            return true;
        }
    };
    let next = pending
        .lock()
        .ok()
        .and_then(|mut p| p.as_mut().and_then(VecDeque::pop_front));
    // A waiter that gave up (its step was cancelled) is not an error.
    next.map(|tx| tx.send(reply)).is_some()
}

impl launchway_runner::process::Spawner for Launcher {
    fn spawn(
        &self,
        job_dir: &Path,
        argv: &[String],
        cwd: &Path,
        env: &[(String, String)],
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::io::Result<launchway_runner::process::Spawned>>
                + Send,
        >,
    > {
        let inner = self.inner.clone();
        let job_dir = job_dir.to_path_buf();
        let start = Start {
            argv: argv.to_vec(),
            cwd: cwd.to_path_buf(),
            env: env.to_vec(),
        };
        Box::pin(async move {
            let conn = inner.conn(&job_dir).await?;
            let (out, err, reply) = request(&conn, &start).await?;
            let (pid, exit) = match reply.await {
                Ok(Reply::Started(pid, exit)) => (pid, exit),
                Ok(Reply::Failed(e)) => return Err(e),
                Ok(Reply::Ready | Reply::Standby) => {
                    return Err(std::io::Error::other("launcher out of step"));
                }
                Err(_) => return Err(gone()),
            };
            let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(out))?;
            let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(err))?;
            Ok(launchway_runner::process::Spawned {
                pid,
                stdout: Box::new(stdout),
                stderr: Box::new(stderr),
                exit,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Listings;
    use std::time::Duration;

    /// Listed once the directories above `work` have been still for a
    /// moment (a change within the same clock tick would not show).
    fn listed(work: &std::path::Path) -> Listings {
        for _ in 0..100 {
            if let Some(l) = Listings::now(work) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(60));
        }
        panic!("the directories above {} never stood still", work.display());
    }

    /// A spare's listings go stale when an entry appears or goes in a
    /// directory above the work dir, not when the work dir itself changes
    /// (its contents are the jobs', granted when a job is assigned).
    #[test]
    fn listings_follow_the_work_dirs_parents_only() {
        // Not under /tmp, where other tests make entries all the time (as
        // they would outdate a spare there): beside this test binary.
        let quiet = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::Builder::new()
            .prefix("listings-test")
            .tempdir_in(quiet)
            .unwrap();
        let host = tmp.path().join("host");
        let work = host.join("agent");
        std::fs::create_dir_all(&work).unwrap();
        let still = |l: &Listings| Listings::now(&work).as_ref() == Some(l);
        let before = listed(&work);
        assert!(still(&before));
        std::fs::create_dir(work.join("runs")).unwrap();
        assert!(still(&before), "the work dir's own entries do not count");
        std::fs::create_dir(host.join("beside")).unwrap();
        assert!(!still(&before));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!still(&before), "a new entry beside the work dir");
        let after = listed(&work);
        std::fs::remove_dir(host.join("beside")).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(!still(&after), "an entry gone above the work dir");
    }
}
