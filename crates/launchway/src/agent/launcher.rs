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
use std::collections::{HashMap, HashSet};
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
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
    let body = serde_json::to_vec(a).map_err(std::io::Error::other)?;
    let s = sock
        .lock()
        .map_err(|_| std::io::Error::other("socket lock poisoned"))?;
    send_frame(&s, &body, &[])
}

/// `launchway sandbox-exec`: the launcher of one job, on the socket that
/// is its standard input. Returns when the agent closes it (or dies),
/// after killing everything the job started.
pub fn serve(deny: &[PathBuf], job_dir: &Path, job: &StepJob) -> Result<u8, String> {
    let ctl = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("sandbox-exec: standard input: {e}"))?;
    let writer = Arc::new(Mutex::new(
        ctl.try_clone()
            .map_err(|e| format!("sandbox-exec: standard input: {e}"))?,
    ));
    let kill_all = match sandbox::enter(deny, job_dir, job) {
        Ok(k) => k,
        Err(e) => {
            let _ = answer(
                &writer,
                &Answer::Failed {
                    message: e.clone(),
                    not_found: false,
                },
            );
            return Err(e);
        }
    };
    answer(&writer, &Answer::Ready).map_err(|e| format!("sandbox-exec: {e}"))?;
    let running: Arc<Mutex<HashSet<u32>>> = Arc::default();
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
        let spawned = cmd.spawn();
        // This process's copies of the output pipes close here, so the
        // agent sees the end of the output when the step's processes end.
        drop(cmd);
        match spawned {
            Ok(mut child) => {
                let pid = child.id();
                if let Ok(mut r) = running.lock() {
                    r.insert(pid);
                }
                if answer(&writer, &Answer::Started { pid }).is_err() {
                    break;
                }
                let (writer, running) = (writer.clone(), running.clone());
                std::thread::spawn(move || {
                    let status = child.wait().map_or(1 << 8, ExitStatus::into_raw);
                    if let Ok(mut r) = running.lock() {
                        r.remove(&pid);
                    }
                    let _ = answer(&writer, &Answer::Exited { pid, status });
                });
            }
            Err(e) => {
                let a = Answer::Failed {
                    not_found: e.kind() == std::io::ErrorKind::NotFound,
                    message: e.to_string(),
                };
                if answer(&writer, &a).is_err() {
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
    Ok(0)
}

/// What one spawn request got back.
enum Reply {
    Ready,
    Started(
        u32,
        tokio::sync::oneshot::Receiver<std::io::Result<ExitStatus>>,
    ),
    Failed(std::io::Error),
}

/// A running launcher.
struct Conn {
    sock: Mutex<UnixStream>,
    replies: Mutex<std::sync::mpsc::Receiver<Reply>>,
    process: Mutex<std::process::Child>,
}

/// The agent's side: starts the job's launcher on the first step and
/// hands it each step.
pub struct Launcher {
    inner: Arc<Inner>,
}

struct Inner {
    exe: PathBuf,
    work: PathBuf,
    job: StepJob,
    conn: Mutex<Option<Arc<Conn>>>,
}

impl Launcher {
    pub fn new(exe: PathBuf, work: PathBuf, job: StepJob) -> Launcher {
        Launcher {
            inner: Arc::new(Inner {
                exe,
                work,
                job,
                conn: Mutex::new(None),
            }),
        }
    }

    /// Ends the launcher (which kills what the job left) and waits for it.
    pub fn close(&self) {
        let conn = self.inner.conn.lock().ok().and_then(|mut c| c.take());
        let Some(conn) = conn else { return };
        if let Ok(s) = conn.sock.lock() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Ok(mut p) = conn.process.lock() {
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

impl Inner {
    fn conn(&self, job_dir: &Path) -> std::io::Result<Arc<Conn>> {
        let mut slot = self
            .conn
            .lock()
            .map_err(|_| std::io::Error::other("launcher lock poisoned"))?;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let (ours, theirs) = UnixStream::pair()?;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("sandbox-exec")
            .arg("--deny")
            .arg(&self.work)
            .arg("--job-dir")
            .arg(job_dir)
            .arg("--track")
            .arg(&self.job.tracking_id);
        if let Some(cg) = &self.job.cgroup {
            cmd.arg("--cgroup").arg(cg);
        }
        if !self.job.landlock {
            cmd.arg("--no-landlock");
        }
        let process = cmd
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = ours.try_clone()?;
        std::thread::spawn(move || read_answers(&reader, &tx));
        let conn = Arc::new(Conn {
            sock: Mutex::new(ours),
            replies: Mutex::new(rx),
            process: Mutex::new(process),
        });
        // The launcher says whether it could enter the sandbox.
        match next_reply(&conn)? {
            Reply::Ready => {}
            Reply::Failed(e) => return Err(e),
            Reply::Started(..) => return Err(std::io::Error::other("launcher out of step")),
        }
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn start(
        &self,
        job_dir: &Path,
        start: &Start,
    ) -> std::io::Result<(
        u32,
        std::io::PipeReader,
        std::io::PipeReader,
        tokio::sync::oneshot::Receiver<std::io::Result<ExitStatus>>,
    )> {
        let conn = self.conn(job_dir)?;
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        let body = serde_json::to_vec(start).map_err(std::io::Error::other)?;
        // One request at a time: its answer is the next one that comes.
        let replies = conn
            .replies
            .lock()
            .map_err(|_| std::io::Error::other("launcher lock poisoned"))?;
        {
            let s = conn
                .sock
                .lock()
                .map_err(|_| std::io::Error::other("launcher lock poisoned"))?;
            send_frame(&s, &body, &[out_w.as_fd(), err_w.as_fd()])?;
        }
        drop((out_w, err_w));
        match replies.recv() {
            Ok(Reply::Started(pid, exit)) => Ok((pid, out_r, err_r, exit)),
            Ok(Reply::Failed(e)) => Err(e),
            Ok(Reply::Ready) => Err(std::io::Error::other("launcher out of step")),
            Err(_) => Err(gone()),
        }
    }
}

fn gone() -> std::io::Error {
    std::io::Error::other("the job's launcher stopped (see the agent's log)")
}

fn next_reply(conn: &Conn) -> std::io::Result<Reply> {
    conn.replies
        .lock()
        .map_err(|_| std::io::Error::other("launcher lock poisoned"))?
        .recv()
        .map_err(|_| gone())
}

/// The launcher's answers, in order: replies to requests go to `tx`, wait
/// statuses to whoever waits for that process.
fn read_answers(sock: &UnixStream, tx: &std::sync::mpsc::Sender<Reply>) {
    let mut waiters: HashMap<u32, tokio::sync::oneshot::Sender<std::io::Result<ExitStatus>>> =
        HashMap::new();
    while let Ok(Some((body, _))) = recv_frame(sock) {
        let Ok(a) = serde_json::from_slice::<Answer>(&body) else {
            break;
        };
        let reply = match a {
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
                continue;
            }
        };
        if tx.send(reply).is_err() {
            break;
        }
    }
    // Waiters dropped here learn that the launcher is gone.
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
            let (pid, out, err, exit) =
                tokio::task::spawn_blocking(move || inner.start(&job_dir, &start))
                    .await
                    .map_err(std::io::Error::other)??;
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
