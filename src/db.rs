//! `nol db provision`: the roles of a province database (issue 12, least privilege), made or
//! brought back in line with the database's admin URL before the services start.
//!
//! ```text
//! nol db provision --database-url postgres://postgres:…@host/nol_320000
//! ```
//!
//! Passwords come from `NOL_DB_PASSWORD_<ROLE>` (`REGISTRY`, `CASES`, `TRANSFER`, `REPORTING`,
//! `REPORTING_READ`, `AUDIT_READ`); `--require-passwords` fails when one is missing (a deployment
//! whose server asks for passwords). Running it again changes nothing that is already right.

use clap::Subcommand;
use nol_runtime::provision::{self, Passwords, SERVICES};

#[derive(Subcommand)]
pub enum DbCommand {
    /// Creates or updates a role per service owning only its schema, the audit schemas' owner,
    /// the reporting and audit readers, their grants and passwords; applies the runtime's
    /// migrations (the audit log's move out of the services' schemas). Idempotent.
    Provision {
        /// The province database as its admin (a superuser).
        #[arg(long, env = "NOL_DATABASE_ADMIN_URL", hide_env_values = true)]
        database_url: String,
        /// Fail unless every login role's password is given (NOL_DB_PASSWORD_<ROLE>).
        #[arg(long)]
        require_passwords: bool,
    },
}

pub async fn run(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Provision { database_url, require_passwords } => {
            let passwords = Passwords::from_env();
            if require_passwords {
                let missing: Vec<String> = provision::Roles::new("x")?
                    .logins()
                    .into_iter()
                    .map(|(suffix, _)| suffix)
                    .filter(|suffix| !passwords.given().contains(&suffix.as_str()))
                    .map(|suffix| format!("NOL_DB_PASSWORD_{suffix}"))
                    .collect();
                anyhow::ensure!(missing.is_empty(), "missing passwords (缺少密码): {}", missing.join(", "));
            }
            let done = provision::provision(&database_url, &passwords).await?;
            let roles = &done.roles;
            println!("{}: 数据库角色已就绪 (roles provisioned)", roles.database);
            for service in SERVICES {
                println!("  {:<34} owns schema {service}; appends to {service}_audit", roles.service(service));
            }
            println!("  {:<34} owns the audit schemas (no login)", roles.audit());
            println!("  {:<34} reads schema reporting", roles.reporting_reader());
            println!("  {:<34} reads the audit schemas (nol audit verify, head)", roles.audit_reader());
            if !done.passwords_set.is_empty() {
                println!("  passwords set: {}", done.passwords_set.join(", "));
            }
            Ok(())
        }
    }
}
