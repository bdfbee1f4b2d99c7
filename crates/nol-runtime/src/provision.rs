//! Least privilege in PostgreSQL (issue 12): a role per service owning its schema and nothing
//! else, the audit log owned by a role no service is, and read-only roles for reporting and for
//! audit checks. [`provision`] makes them with the database's admin URL, idempotently; the
//! services then connect as their own role (`<database>_<service>`), never as the superuser.
//!
//! For province database `nol_320000`:
//!
//! | role | login | owns | may |
//! |---|---|---|---|
//! | `nol_320000_registry`, `_cases`, `_transfer`, `_reporting` | yes | its schema | everything in its schema; USAGE on its audit schema and EXECUTE on its `audit_append` and `audit_append_each`; nothing in another service's schema; no CREATE on the database (TEMPORARY only) |
//! | `nol_320000_audit` | no | `<service>_audit` (the audit logs, `audit_append`, `audit_append_each`, `audit_prune`) | — (the append runs as it: SECURITY DEFINER) |
//! | `nol_320000_reporting_read` | yes | — | SELECT on the reporting schema (BI, dashboards) |
//! | `nol_320000_audit_read` | yes | — | SELECT on the audit schemas (`nol audit verify`, `head`) |
//!
//! Roles are cluster-wide in PostgreSQL, hence named after the database. Passwords are set where
//! the deployment gives them (`NOL_DB_PASSWORD_<ROLE>`, e.g. `NOL_DB_PASSWORD_CASES`), sent as a
//! SCRAM-SHA-256 verifier computed here, so no password in clear reaches the server's logs.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::database;

/// Every service's schema in a province database.
pub const SERVICES: [&str; 4] = ["registry", "cases", "transfer", "reporting"];

/// The longest role name PostgreSQL keeps whole.
const MAX_NAME: usize = 63;

/// The roles of one province database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub database: String,
}

impl Roles {
    /// The roles of `database` (lowercase letters, digits and '_', short enough for every role).
    pub fn new(database: &str) -> anyhow::Result<Roles> {
        anyhow::ensure!(
            !database.is_empty()
                && database.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'),
            "a province database's name is lowercase letters, digits and '_', got {database:?}"
        );
        anyhow::ensure!(
            database.len() + "_reporting_read".len() <= MAX_NAME,
            "database name {database:?} is too long for its roles' names ({MAX_NAME} bytes)"
        );
        Ok(Roles { database: database.to_owned() })
    }

    /// The role `service` connects as.
    pub fn service(&self, service: &str) -> String {
        format!("{}_{service}", self.database)
    }

    /// The owner of the audit schemas (no login).
    pub fn audit(&self) -> String {
        format!("{}_audit", self.database)
    }

    /// Reads the reporting schema (BI, dashboards).
    pub fn reporting_reader(&self) -> String {
        format!("{}_reporting_read", self.database)
    }

    /// Reads the audit schemas (`nol audit verify`, `nol audit head`).
    pub fn audit_reader(&self) -> String {
        format!("{}_audit_read", self.database)
    }

    /// The roles that log in, each with the suffix of its password's setting
    /// (`NOL_DB_PASSWORD_<SUFFIX>`).
    pub fn logins(&self) -> Vec<(String, String)> {
        SERVICES
            .iter()
            .map(|service| (service.to_ascii_uppercase(), self.service(service)))
            .chain([
                ("REPORTING_READ".to_owned(), self.reporting_reader()),
                ("AUDIT_READ".to_owned(), self.audit_reader()),
            ])
            .collect()
    }

    /// Every role of the database.
    pub fn all(&self) -> Vec<String> {
        self.logins().into_iter().map(|(_, role)| role).chain([self.audit()]).collect()
    }
}

/// Passwords to set, by the role's suffix (`CASES`, `REPORTING_READ`, …). A role without one keeps
/// what it has (none, on a server that trusts local connections).
#[derive(Clone, Default)]
pub struct Passwords(BTreeMap<String, String>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Passwords {
    /// `NOL_DB_PASSWORD_<SUFFIX>` for every login role that has one set (and not empty).
    pub fn from_env() -> Passwords {
        let suffixes = Roles { database: String::new() }.logins();
        Passwords(
            suffixes
                .into_iter()
                .filter_map(|(suffix, _)| {
                    let value = std::env::var(format!("NOL_DB_PASSWORD_{suffix}")).ok()?;
                    (!value.is_empty()).then_some((suffix, value))
                })
                .collect(),
        )
    }

    pub fn set(&mut self, suffix: &str, password: &str) {
        self.0.insert(suffix.to_owned(), password.to_owned());
    }

    /// The suffixes given a password.
    pub fn given(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// What [`provision`] did.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub roles: Roles,
    /// The roles whose password was set.
    pub passwords_set: Vec<String>,
}

/// Makes (or brings back in line) the roles, schemas, ownership and grants of the province
/// database at `admin_url`, and applies the runtime's migrations (the audit log's move to its own
/// schema needs more rights than a service has). Run with an admin (superuser) URL before the
/// services start, again after an upgrade; running it twice changes nothing. The services' own
/// migrations stay theirs, applied at their start as their role.
pub async fn provision(admin_url: &str, passwords: &Passwords) -> anyhow::Result<Provisioned> {
    let options = PgConnectOptions::from_str(admin_url).context("the admin URL is not a PostgreSQL URL")?;
    let mut admin = PgConnection::connect_with(&options).await.context("connecting with the admin URL")?;
    let who = sqlx::query!(
        r#"SELECT current_database() AS "database!", current_user AS "user!",
                  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS "superuser!""#
    )
    .fetch_one(&mut admin)
    .await?;
    anyhow::ensure!(
        who.superuser,
        "provisioning needs the database's admin (a superuser); {} is not one (请使用管理员账号)",
        who.user
    );
    let roles = Roles::new(&who.database)?;
    // One provisioning of this database at a time; the lock goes with the connection.
    sqlx::raw_sql("SELECT pg_advisory_lock(hashtext('nol.provision'))").execute(&mut admin).await?;

    let mut tx = admin.begin().await?;
    let logins: Vec<String> = roles.logins().into_iter().map(|(_, role)| role).collect();
    sqlx::query!(
        "SELECT set_config('nol.login_roles', $1, true) AS logins, set_config('nol.nologin_roles', $2, true) AS others,
                set_config('nol.temporary_roles', $3, true) AS temporary",
        logins.join(","),
        roles.audit(),
        SERVICES.map(|service| roles.service(service)).join(","),
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::raw_sql(ROLES_SQL).execute(&mut *tx).await.context("creating the roles")?;
    let mut passwords_set = Vec::new();
    for (suffix, role) in roles.logins() {
        let Some(password) = passwords.0.get(&suffix) else { continue };
        let verifier = scram_verifier(password, &uuid::Uuid::new_v4().into_bytes(), SCRAM_ITERATIONS);
        // The server quotes both (`%I`, `%L`); what it returns is executed as it came.
        let alter = sqlx::query_scalar!(
            r#"SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text) AS "statement!""#,
            role,
            verifier
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(alter)).execute(&mut *tx).await?;
        passwords_set.push(role);
    }
    tx.commit().await?;

    for service in SERVICES {
        let mut tx = admin.begin().await?;
        service_settings(&mut tx, &roles, service).await?;
        sqlx::raw_sql(SCHEMAS_SQL).execute(&mut *tx).await.with_context(|| format!("the {service} schemas"))?;
        tx.commit().await?;
        // The runtime's migrations, as the admin, in the service's schema (the audit log's move).
        let pool = database::connect(admin_url, service, 1).await?;
        database::migrate_runtime(&pool)
            .await
            .with_context(|| format!("the runtime's migrations in schema {service}"))?;
        pool.close().await;
        let mut tx = admin.begin().await?;
        service_settings(&mut tx, &roles, service).await?;
        sqlx::raw_sql(GRANTS_SQL).execute(&mut *tx).await.with_context(|| format!("the {service} grants"))?;
        tx.commit().await?;
    }
    sqlx::raw_sql("SELECT pg_advisory_unlock(hashtext('nol.provision'))").execute(&mut admin).await?;
    admin.close().await?;
    Ok(Provisioned { roles, passwords_set })
}

/// Names the service's schema and roles for [`SCHEMAS_SQL`] and [`GRANTS_SQL`], for the transaction.
async fn service_settings(tx: &mut PgConnection, roles: &Roles, service: &str) -> sqlx::Result<()> {
    let reader = if service == "reporting" { roles.reporting_reader() } else { String::new() };
    sqlx::query!(
        "SELECT set_config('nol.schema', $1, true) AS schema, set_config('nol.service_role', $2, true) AS service_role,
                set_config('nol.audit_role', $3, true) AS audit_role,
                set_config('nol.audit_reader', $4, true) AS audit_reader,
                set_config('nol.schema_reader', $5, true) AS schema_reader",
        service,
        roles.service(service),
        roles.audit(),
        roles.audit_reader(),
        reader,
    )
    .fetch_one(tx)
    .await?;
    Ok(())
}

/// Creates the roles (login or not), never superuser, and lets only them connect to the database.
const ROLES_SQL: &str = r#"
DO $$
DECLARE
    database_name text := current_database();
    one text;
BEGIN
    FOREACH one IN ARRAY string_to_array(current_setting('nol.login_roles'), ',') LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = one) THEN
            EXECUTE format('CREATE ROLE %I', one);
        END IF;
        EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', one);
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', database_name, one);
    END LOOP;
    -- Temporary objects are the session's own; a landed migration of the registry's makes a
    -- temporary function (`pg_temp.mask_runs`).
    FOREACH one IN ARRAY string_to_array(current_setting('nol.temporary_roles'), ',') LOOP
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', database_name, one);
    END LOOP;
    FOREACH one IN ARRAY string_to_array(current_setting('nol.nologin_roles'), ',') LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = one) THEN
            EXECUTE format('CREATE ROLE %I', one);
        END IF;
        EXECUTE format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', one);
    END LOOP;
    -- No CREATE or TEMPORARY for anyone but the admin, and CONNECT only for this database's roles
    -- (roles are cluster-wide: another province's would otherwise connect here).
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', database_name);
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
END
$$;
"#;

/// The service's schema, owned by its role, and its audit schema, owned by the audit role.
const SCHEMAS_SQL: &str = r#"
DO $$
DECLARE
    service_schema text := current_setting('nol.schema');
    audit_schema text := current_setting('nol.schema') || '_audit';
BEGIN
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', service_schema);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', service_schema, current_setting('nol.service_role'));
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', audit_schema);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', audit_schema, current_setting('nol.audit_role'));
END
$$;
"#;

/// Everything in the service's schema to its role (the tables an admin made before, the runtime's
/// migration table), everything in the audit schema to the audit role; then the grants: the
/// service may append to its log and nothing more there; the readers read.
const GRANTS_SQL: &str = r#"
DO $$
DECLARE
    service_schema text := current_setting('nol.schema');
    audit_schema text := current_setting('nol.schema') || '_audit';
    service_role text := current_setting('nol.service_role');
    audit_reader text := current_setting('nol.audit_reader');
    schema_reader text := current_setting('nol.schema_reader');
    target record;
    object record;
BEGIN
    FOR target IN SELECT * FROM (VALUES (service_schema, service_role),
                                        (audit_schema, current_setting('nol.audit_role')))
                                AS owned (schema_name, owner_name) LOOP
        -- Tables, views, sequences (but those of a column, which follow their table).
        FOR object IN
            SELECT c.oid::regclass::text AS name, c.relkind
              FROM pg_class AS c
             WHERE c.relnamespace = target.schema_name::regnamespace
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND c.relowner <> target.owner_name::regrole
               AND NOT (c.relkind = 'S' AND EXISTS (
                       SELECT 1 FROM pg_depend AS d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
             ORDER BY c.relkind = 'S'
        LOOP
            EXECUTE format('ALTER %s %s OWNER TO %I',
                           CASE object.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                               WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                               ELSE 'TABLE' END,
                           object.name, target.owner_name);
        END LOOP;
        FOR object IN
            SELECT p.oid::regprocedure::text AS name, p.prokind
              FROM pg_proc AS p
             WHERE p.pronamespace = target.schema_name::regnamespace
               AND p.proowner <> target.owner_name::regrole
        LOOP
            EXECUTE format('ALTER %s %s OWNER TO %I',
                           CASE object.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                           object.name, target.owner_name);
        END LOOP;
        -- Enums, domains, ranges and composite types of their own (not a table's row type).
        FOR object IN
            SELECT t.oid::regtype::text AS name, t.typtype
              FROM pg_type AS t
             WHERE t.typnamespace = target.schema_name::regnamespace
               AND t.typowner <> target.owner_name::regrole
               AND t.typtype IN ('e', 'd', 'r', 'c')
               AND (t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
        LOOP
            EXECUTE format('ALTER %s %s OWNER TO %I', CASE object.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                           object.name, target.owner_name);
        END LOOP;
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', target.schema_name);
    END LOOP;

    -- The service appends to its log, through the function only.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', audit_schema, service_role);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC, %I', audit_schema, service_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC, %I', audit_schema, service_role);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.audit_prune(timestamptz, text, text, text, text) FROM PUBLIC, %I',
                   audit_schema, service_role);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.audit_append(text, text, text, text, text, text[], text, timestamptz) FROM PUBLIC',
                   audit_schema);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.audit_append(text, text, text, text, text, text[], text, timestamptz) TO %I',
                   audit_schema, service_role);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.audit_append_each(text[], text[], text[], text, text, text[], text[]) FROM PUBLIC',
                   audit_schema);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.audit_append_each(text[], text[], text[], text, text, text[], text[]) TO %I',
                   audit_schema, service_role);

    -- Checks of the chain read it, and nothing else.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', audit_schema, audit_reader);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', audit_schema, audit_reader);

    -- The reporting schema's reader: what is there now and what the service's migrations add.
    IF schema_reader <> '' THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', service_schema, schema_reader);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', service_schema, schema_reader);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                       service_role, service_schema, schema_reader);
    END IF;
END
$$;
"#;

/// Iterations of the SCRAM verifiers made here (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 7677, as `ALTER ROLE …
/// PASSWORD` accepts it pre-hashed): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    type HmacSha256 = Hmac<Sha256>;
    let mac = |key: &[u8], data: &[&[u8]]| {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        for part in data {
            mac.update(part);
        }
        mac.finalize().into_bytes()
    };
    // Hi(password, salt, i): PBKDF2-HMAC-SHA-256, one block.
    let mut block = mac(password.as_bytes(), &[salt, &1u32.to_be_bytes()]);
    let mut salted = block;
    for _ in 1..iterations {
        block = mac(password.as_bytes(), &[&block]);
        for (byte, next) in salted.iter_mut().zip(block.iter()) {
            *byte ^= next;
        }
    }
    let client_key = mac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = mac(&salted, &[b"Server Key"]);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("SCRAM-SHA-256${iterations}:{}${}:{}", b64.encode(salt), b64.encode(stored_key), b64.encode(server_key))
}

/// The iterations and salt of a SCRAM-SHA-256 verifier, as PostgreSQL stores it.
pub fn scram_salt(verifier: &str) -> Option<(u32, Vec<u8>)> {
    let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
    let (iterations, rest) = rest.split_once(':')?;
    let (salt, _) = rest.split_once('$')?;
    let salt = base64::engine::general_purpose::STANDARD.decode(salt).ok()?;
    Some((iterations.parse().ok()?, salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_named_after_the_database() {
        let roles = Roles::new("nol_320000").unwrap();
        assert_eq!(roles.service("cases"), "nol_320000_cases");
        assert_eq!(roles.audit(), "nol_320000_audit");
        assert_eq!(roles.all().len(), 7);
        assert!(Roles::new("nol-320000").is_err());
        assert!(Roles::new(&"n".repeat(60)).is_err());
    }

    #[test]
    fn a_scram_verifier_has_postgresqls_form() {
        let verifier = scram_verifier("secret", b"0123456789abcdef", 4096);
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"), "{verifier}");
        assert_ne!(verifier, scram_verifier("secret2", b"0123456789abcdef", 4096));
        assert_eq!(scram_salt(&verifier), Some((4096, b"0123456789abcdef".to_vec())));
    }
}
