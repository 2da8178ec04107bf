//! A PAM service using pam_radius_auth, for pamtester to log in through the RADIUS
//! front-end of the real daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::freeradius::{ClientOutput, run_bounded};

/// A PAM service file in /etc/pam.d (where pamtester looks), removed on drop.
pub struct PamService {
    name: String,
    _dir: tempfile::TempDir,
}

impl PamService {
    /// A service whose only auth module is pam_radius_auth, pointed at `addr` with `secret`
    /// by a config file in a temp dir. Panics when pamtester or /etc/pam.d is missing.
    pub fn new(addr: SocketAddr, secret: &str) -> PamService {
        if !Path::new("/etc/pam.d").is_dir()
            || Command::new("pamtester").arg("-v").output().is_err()
        {
            panic!(
                "needs pamtester and libpam-radius-auth (apt-get install pamtester \
                 libpam-radius-auth)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pam_radius_auth.conf");
        std::fs::write(&conf, format!("{addr} {secret} 3\n")).unwrap();
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).unwrap();
        let name = format!("portcullis-test-{}", hex::encode(suffix));
        std::fs::write(
            Path::new("/etc/pam.d").join(&name),
            format!(
                "auth required pam_radius_auth.so conf={}\naccount required pam_permit.so\n",
                conf.display()
            ),
        )
        .unwrap();
        PamService { name, _dir: dir }
    }

    /// `pamtester <service> <user> authenticate` with `password` on stdin.
    pub fn authenticate(&self, user: &str, password: &str) -> ClientOutput {
        self.converse(user, &[password])
    }

    /// `pamtester <service> <user> authenticate` with `answers` on stdin, one per prompt.
    pub fn converse(&self, user: &str, answers: &[&str]) -> ClientOutput {
        let mut cmd = Command::new("pamtester");
        cmd.args([self.name.as_str(), user, "authenticate"]);
        let input: String = answers.iter().map(|a| format!("{a}\n")).collect();
        run_bounded(&mut cmd, &input, Duration::from_secs(20))
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.name));
    }
}
