//! A small file system that a test can fill: a tmpfs of a given size mounted on one directory,
//! in a private mount namespace (an unprivileged user namespace), so a broker run inside it
//! meets a really full disk there and nowhere else, and nothing outlives the test.
//!
//! A holder process keeps the namespace alive across broker restarts; brokers enter it through
//! [`SmallFs::launcher`] (`nsenter`). The test reaches the mounted directory through the
//! holder's `/proc/<pid>/root`, which resolves paths in its mount namespace.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// The name of the file [`SmallFs::fill`] writes.
const FILLER: &str = "filler";

/// A tmpfs on a directory, seen only by processes that enter its namespace.
#[derive(Debug)]
pub struct SmallFs {
    holder: Child,
    dir: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `size_bytes` on `dir` (created if missing) in a new namespace.
    pub fn mount(dir: &Path, size_bytes: u64) -> anyhow::Result<SmallFs> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let mut holder = Command::new("unshare")
            .args([
                "--user",
                "--map-root-user",
                "--mount",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c"])
            .arg(r#"mount -t tmpfs -o "size=$1" strom-small-fs "$2" && echo mounted && exec cat"#)
            .args(["sh", &size_bytes.to_string()])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running unshare (util-linux) for a private tmpfs")?;
        let stdout = holder.stdout.take().context("holder stdout is piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let output = holder.wait_with_output()?;
            bail!(
                "mounting a tmpfs in a user namespace failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(SmallFs { holder, dir })
    }

    /// The command prefix that runs a program inside the namespace (for
    /// [`BrokerOptions::launcher`](crate::BrokerOptions::launcher)).
    pub fn launcher(&self) -> Vec<String> {
        [
            "nsenter",
            "--target",
            &self.holder.id().to_string(),
            "--user",
            "--mount",
            "--preserve-credentials",
            "--",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// `path` (inside the mounted directory) as the test reaches it.
    fn inside(&self, name: &str) -> PathBuf {
        let relative = self.dir.strip_prefix("/").unwrap_or(&self.dir);
        PathBuf::from(format!("/proc/{}/root", self.holder.id()))
            .join(relative)
            .join(name)
    }

    /// Writes a file until the file system is full; returns how many bytes it took.
    pub fn fill(&self) -> anyhow::Result<u64> {
        let path = self.inside(FILLER);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e).context("filling the small file system"),
            }
        }
        Ok(written)
    }

    /// Frees what [`fill`](Self::fill) took.
    pub fn free(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.inside(FILLER)).context("removing the filler")
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // The namespace, and the tmpfs with it, goes with its last process.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
