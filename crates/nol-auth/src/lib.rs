//! Who is calling, and what they may see.
//!
//! Every business RPC carries `authorization: Bearer <token>`, a JWT signed with Ed25519 (EdDSA)
//! that names the caller's region code and role. A caller sees and changes only its own region and
//! the regions below it; anything else is `PERMISSION_DENIED`. Health and reflection take no token.
//!
//! A token names this system as its audience (`aud`, per deployment: `NOL_TOKEN_AUDIENCE`), has an
//! id (`jti`) that a revocation list can name, lives at most `NOL_TOKEN_MAX_LIFETIME_SECS` from its
//! issue, and names its signing key (`kid`, from the public key): a deployment may trust several
//! keys at once, so the identity provider rotates its key without a gap.
//!
//! Which role may make which call is one table, [`policy::TABLE`]. A school's token also names its
//! school (`school`, the school code): a school sees and changes its own pupils only.
#![forbid(unsafe_code)]

pub mod policy;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nol_messages::vocab::Action;
use nol_messages::{Common, Msg};
use nol_region::RegionCode;
use tonic::metadata::MetadataValue;

/// The issuer every token must name.
pub const ISSUER: &str = "not-one-less";
/// The audience a token names unless a deployment sets its own.
pub const DEFAULT_AUDIENCE: &str = "not-one-less";
/// The longest a token may live unless a deployment sets otherwise.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a caller does. Roles gate actions; regions gate data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// County bureau case worker (县级教育局): opens and works cases, hands them over.
    Caseworker,
    /// A school: confirms attendance, reports absent pupils.
    School,
    /// City or provincial bureau (设区市 / 省教育厅): reads and supervises.
    Supervisor,
    /// County poverty-alleviation leading group member (R6 approvals).
    Approver,
    /// Operator of the deployment: dead letters, backlogs.
    Operator,
    /// Another bureau's system calling the API.
    System,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Caseworker, Role::School, Role::Supervisor, Role::Approver, Role::Operator, Role::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::School => "school",
            Role::Supervisor => "supervisor",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == text).ok_or_else(|| {
            let known: Vec<_> = Role::ALL.iter().map(|role| role.as_str()).collect();
            format!("unknown role {text:?}; one of {}", known.join(", "))
        })
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    region: String,
    role: String,
    iat: u64,
    exp: u64,
    jti: String,
    /// The school code of a school's token. Older school tokens lack it: they are refused for
    /// calls about pupils.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    school: Option<String>,
}

/// The authenticated caller of one request.
#[derive(Clone)]
pub struct Caller {
    pub subject: String,
    pub region: RegionCode,
    pub role: Role,
    /// The school a school's token names (role school only).
    pub school: Option<String>,
    bearer: Arc<str>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("subject", &self.subject)
            .field("region", &self.region)
            .field("role", &self.role)
            .field("school", &self.school)
            .finish_non_exhaustive()
    }
}

/// A refusal: the caller may not do this, or may not see that region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("region {requested} is outside your region {own}")]
    OutOfScope { own: RegionCode, requested: RegionCode },
    #[error("this deployment serves {} ({deployment}); your token is for {} ({own})", .deployment.name(), .own.name())]
    OtherProvince { own: RegionCode, deployment: RegionCode },
    #[error("the {role} role may not {}", .action.en())]
    Role { role: Role, action: Action },
    /// The RPC × role table ([`policy::TABLE`]) does not allow this role this call.
    #[error("the {role} role may not call {method}")]
    Call { role: Role, method: String },
    /// A call the table does not name: no one may make it.
    #[error("{method} is not in the access table")]
    NotListed { method: String },
    /// A school token that names no school, for a call about pupils.
    #[error("this school token names no school")]
    NoSchool,
    /// A school reaching for another school's pupil or list.
    #[error("school {requested} is not your school {own}")]
    OtherSchool { own: String, requested: String },
    /// Another service of the province refused the caller (its message passes through), or a
    /// rule of this service that turns this caller away (e.g. only the owning county's approver
    /// decides a deferral).
    #[error("{0}")]
    Refused(Msg),
}

impl Denied {
    /// What a person reads, from the catalogue.
    pub fn message(&self) -> Msg {
        match self {
            Denied::OutOfScope { own, requested } => {
                Common::OutOfScope { own: own.to_string(), requested: requested.to_string() }.into()
            }
            Denied::OtherProvince { own, deployment } => Common::OtherProvince {
                own: own.to_string(),
                own_name: own.name().to_owned(),
                deployment: deployment.to_string(),
                deployment_name: deployment.name().to_owned(),
            }
            .into(),
            Denied::Role { role, action } => Common::RoleMayNot { role: role.to_string(), action: *action }.into(),
            Denied::Call { role, method } => {
                Common::RoleMayNotCall { role: role.to_string(), method: method.clone() }.into()
            }
            Denied::NotListed { method } => Common::CallNotListed { method: method.clone() }.into(),
            Denied::NoSchool => Common::SchoolClaimMissing.into(),
            Denied::OtherSchool { own, requested } => {
                Common::OtherSchool { own: own.clone(), requested: requested.clone() }.into()
            }
            Denied::Refused(message) => message.clone(),
        }
    }
}

impl From<Denied> for tonic::Status {
    fn from(denied: Denied) -> tonic::Status {
        nol_messages::grpc::status(tonic::Code::PermissionDenied, &denied.message())
    }
}

fn unauthenticated(error: &TokenError) -> tonic::Status {
    nol_messages::grpc::status(tonic::Code::Unauthenticated, &error.message())
}

impl Caller {
    /// True when `region` is the caller's own region or lies below it.
    pub fn sees(&self, region: &RegionCode) -> bool {
        self.region.contains(region)
    }

    pub fn require_scope(&self, region: &RegionCode) -> Result<(), Denied> {
        if self.sees(region) { Ok(()) } else { Err(Denied::OutOfScope { own: self.region, requested: *region }) }
    }

    /// Refuses a caller of another province outright: each deployment serves one province.
    pub fn require_province(&self, deployment: &RegionCode) -> Result<(), Denied> {
        if self.region.province() == deployment.province() {
            Ok(())
        } else {
            Err(Denied::OtherProvince { own: self.region, deployment: deployment.province() })
        }
    }

    pub fn require_role(&self, allowed: &[Role], action: Action) -> Result<(), Denied> {
        if allowed.contains(&self.role) { Ok(()) } else { Err(Denied::Role { role: self.role, action }) }
    }

    /// The school a school caller is limited to: `None` for the other roles (their region limits
    /// them), the token's school for a school, and a refusal for a school token naming none.
    pub fn own_school(&self) -> Result<Option<&str>, Denied> {
        match (self.role, self.school.as_deref()) {
            (Role::School, Some(school)) => Ok(Some(school)),
            (Role::School, None) => Err(Denied::NoSchool),
            _ => Ok(None),
        }
    }

    /// Refuses a school caller reaching for a pupil, item or list of another school; the other
    /// roles pass (their region is checked apart).
    pub fn require_school(&self, school_code: &str) -> Result<(), Denied> {
        match self.own_school()? {
            Some(own) if own != school_code.trim() => {
                Err(Denied::OtherSchool { own: own.to_owned(), requested: school_code.trim().to_owned() })
            }
            _ => Ok(()),
        }
    }

    /// The caller's own token, to forward when this service calls another in the province on the
    /// caller's behalf (the callee checks scope again).
    pub fn authorization_header(&self) -> MetadataValue<tonic::metadata::Ascii> {
        // The token came in as a valid ASCII header value.
        MetadataValue::try_from(format!("Bearer {}", self.bearer)).unwrap_or_else(|_| MetadataValue::from_static(""))
    }

    /// A caller for work the system does on its own (event consumers), scoped to a province.
    /// A caller of `role` in `region` that carries no token, for tests of the rules (it cannot
    /// call another service on anyone's behalf).
    pub fn for_tests(region: RegionCode, role: Role) -> Caller {
        Caller { subject: format!("test:{}", role.as_str()), region, role, school: None, bearer: Arc::from("") }
    }

    /// A school caller of `school` in `region`, for tests of the rules.
    pub fn for_tests_school(region: RegionCode, school: &str) -> Caller {
        Caller { school: Some(school.to_owned()), ..Caller::for_tests(region, Role::School) }
    }

    pub fn system(province: RegionCode) -> Caller {
        Caller {
            subject: "system".to_owned(),
            region: province,
            role: Role::System,
            school: None,
            bearer: Arc::from(""),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("missing authorization: send 'authorization: Bearer <token>'")]
    Missing,
    #[error("the authorization header is not 'Bearer <token>'")]
    Malformed,
    #[error("the token is invalid or expired")]
    Invalid,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token lives longer than {0:?}")]
    TooLong(Duration),
    #[error("the token names an unknown region or role: {0}")]
    BadClaims(String),
    #[error("key: {0}")]
    Key(String),
}

impl TokenError {
    /// What a person reads, from the catalogue.
    pub fn message(&self) -> Msg {
        match self {
            TokenError::Missing => Common::TokenMissing,
            TokenError::Malformed => Common::TokenMalformed,
            TokenError::Invalid | TokenError::Key(_) => Common::TokenInvalid,
            TokenError::Revoked => Common::TokenRevoked,
            TokenError::TooLong(limit) => Common::TokenTooLong { hours: limit.as_secs() / 3600 },
            TokenError::BadClaims(detail) => Common::TokenBadClaims { detail: detail.clone() },
        }
        .into()
    }
}

/// Signs tokens. Lives with the identity provider (for the local stack, `nol token`).
pub struct TokenIssuer {
    key: EncodingKey,
    key_id: String,
    audience: String,
}

/// A key's id: the first 16 hex digits of the SHA-256 of its public key (so issuer and verifier
/// agree on it without configuration).
fn key_id(public_key: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(public_key).iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

impl TokenIssuer {
    pub fn from_pem(private_pem: &[u8]) -> Result<TokenIssuer, TokenError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let text = std::str::from_utf8(private_pem).map_err(|e| TokenError::Key(e.to_string()))?;
        let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(text).map_err(|e| TokenError::Key(e.to_string()))?;
        let key = EncodingKey::from_ed_pem(private_pem).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(TokenIssuer {
            key,
            key_id: key_id(signing.verifying_key().as_bytes()),
            audience: DEFAULT_AUDIENCE.to_owned(),
        })
    }

    /// Tokens for another deployment's audience.
    pub fn with_audience(mut self, audience: &str) -> TokenIssuer {
        self.audience = audience.to_owned();
        self
    }

    pub fn issue(
        &self,
        subject: &str,
        region: RegionCode,
        role: Role,
        lifetime: Duration,
    ) -> Result<String, TokenError> {
        self.issue_claims(subject, region, role, None, lifetime)
    }

    /// A school's token: role school, naming its school code (a school sees its own pupils only).
    pub fn issue_for_school(
        &self,
        subject: &str,
        region: RegionCode,
        school_code: &str,
        lifetime: Duration,
    ) -> Result<String, TokenError> {
        check_school_code(school_code)?;
        self.issue_claims(subject, region, Role::School, Some(school_code.to_owned()), lifetime)
    }

    fn issue_claims(
        &self,
        subject: &str,
        region: RegionCode,
        role: Role,
        school: Option<String>,
        lifetime: Duration,
    ) -> Result<String, TokenError> {
        let now = unix_now();
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: self.audience.clone(),
            sub: subject.to_owned(),
            region: region.to_string(),
            role: role.as_str().to_owned(),
            iat: now,
            exp: now + lifetime.as_secs(),
            jti: id.iter().map(|byte| format!("{byte:02x}")).collect(),
            school,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| TokenError::Key(e.to_string()))
    }
}

/// Verifies tokens in every service. Clones share the trusted keys and the revocation list, so
/// reloading them ([`TokenVerifier::trust`], [`TokenVerifier::set_revoked`]) reaches every clone.
///
/// A caller sends the same token with every call until it expires, and checking its Ed25519
/// signature and parsing it was 7 % of the registry's CPU in a `CreatePupil` (issue 13). So a
/// token verified once is kept, by its SHA-256, with what it said: a later call with the same
/// token skips the signature and the parsing, not the checks that can change while a token lives
/// — its expiry against the clock, its id against the revocation list, its key against the keys
/// trusted now. Clones share the cache.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<RwLock<HashMap<String, Arc<DecodingKey>>>>,
    revoked: Arc<RwLock<HashSet<String>>>,
    validation: Arc<Validation>,
    max_lifetime: Duration,
    verified: Arc<quick_cache::sync::Cache<[u8; 32], Arc<Verified>>>,
}

/// How many verified tokens a service keeps: more than a province's users signed in at once. A
/// token pushed out is verified again on its next call.
const VERIFIED_TOKENS: usize = 20_000;

/// The leeway on a token's expiry, for clocks a little apart (the same for a cached token).
const EXPIRY_LEEWAY_SECS: u64 = 30;

/// What verifying a token gave, kept for its next calls.
struct Verified {
    caller: Caller,
    exp: u64,
    jti: String,
    key_id: String,
}

fn verified_tokens() -> Arc<quick_cache::sync::Cache<[u8; 32], Arc<Verified>>> {
    Arc::new(quick_cache::sync::Cache::new(VERIFIED_TOKENS))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// The key id and decoding key of a public key in SPKI PEM.
fn decoding_key(public_pem: &[u8]) -> Result<(String, DecodingKey), TokenError> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(public_pem).map_err(|e| TokenError::Key(e.to_string()))?;
    let public = ed25519_dalek::VerifyingKey::from_public_key_pem(text).map_err(|e| TokenError::Key(e.to_string()))?;
    let key = DecodingKey::from_ed_pem(public_pem).map_err(|e| TokenError::Key(e.to_string()))?;
    Ok((key_id(public.as_bytes()), key))
}

fn validation(audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = EXPIRY_LEEWAY_SECS;
    validation
}

impl TokenVerifier {
    pub fn from_pem(public_pem: &[u8]) -> Result<TokenVerifier, TokenError> {
        TokenVerifier::from_pems(&[public_pem])
    }

    /// A verifier trusting every key given (the current and the next during a rotation).
    pub fn from_pems(public_pems: &[&[u8]]) -> Result<TokenVerifier, TokenError> {
        let verifier = TokenVerifier {
            keys: Default::default(),
            revoked: Default::default(),
            validation: Arc::new(validation(DEFAULT_AUDIENCE)),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            verified: verified_tokens(),
        };
        verifier.trust(public_pems)?;
        Ok(verifier)
    }

    /// Trusts exactly these keys from now on (a rotation adds the next key, later drops the old).
    pub fn trust(&self, public_pems: &[&[u8]]) -> Result<(), TokenError> {
        let keys = public_pems
            .iter()
            .map(|pem| decoding_key(pem).map(|(id, key)| (id, Arc::new(key))))
            .collect::<Result<HashMap<_, _>, _>>()?;
        if keys.is_empty() {
            return Err(TokenError::Key("no token verification key".into()));
        }
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        Ok(())
    }

    /// The ids of the trusted keys.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Refuses the tokens with these ids from now on.
    pub fn set_revoked(&self, ids: HashSet<String>) {
        *self.revoked.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = ids;
    }

    /// The deployment's audience, and the longest lifetime it accepts.
    pub fn for_deployment(mut self, audience: &str, max_lifetime: Duration) -> TokenVerifier {
        self.validation = Arc::new(validation(audience));
        self.max_lifetime = max_lifetime;
        // Verified under the old audience and lifetime: not kept.
        self.verified = verified_tokens();
        self
    }

    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        self.verify_until(token).map(|(caller, _)| caller)
    }

    /// Verifies a token and tells when it expires (Unix seconds): a web session ends with it.
    pub fn verify_until(&self, token: &str) -> Result<(Caller, u64), TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.verified.get(&digest) {
            if let Some(answer) = self.still_valid(&known, unix_now()) {
                return Ok(answer);
            }
            // Expired, revoked or its key dropped: forgotten, and checked in full for the reason.
            self.verified.remove(&digest);
        }
        let (caller, exp, jti, key_id) = self.verify_in_full(token)?;
        self.verified.insert(digest, Arc::new(Verified { caller: caller.clone(), exp, jti, key_id }));
        Ok((caller, exp))
    }

    /// A token verified before, if it still holds at `now` (Unix seconds): not expired, not
    /// revoked, its key still trusted.
    fn still_valid(&self, known: &Verified, now: u64) -> Option<(Caller, u64)> {
        let live = known.exp.saturating_add(EXPIRY_LEEWAY_SECS) >= now;
        let revoked = self.revoked.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&known.jti);
        let trusted = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(&known.key_id);
        (live && !revoked && trusted).then(|| (known.caller.clone(), known.exp))
    }

    /// The signature, the claims, the revocation list: everything, as for a token never seen.
    fn verify_in_full(&self, token: &str) -> Result<(Caller, u64, String, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key_id = header.kid.ok_or(TokenError::Invalid)?;
        let key = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key_id)
            .cloned()
            .ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.jti.is_empty() {
            return Err(TokenError::Invalid);
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime.as_secs() {
            return Err(TokenError::TooLong(self.max_lifetime));
        }
        if self.revoked.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        let region = RegionCode::parse(&claims.region).map_err(|e| TokenError::BadClaims(e.to_string()))?;
        let role = claims.role.parse::<Role>().map_err(TokenError::BadClaims)?;
        let school = match (role, claims.school) {
            (Role::School, Some(school)) => {
                check_school_code(&school)?;
                Some(school)
            }
            (_, Some(_)) => return Err(TokenError::BadClaims(format!("a {role} token names a school"))),
            (_, None) => None,
        };
        Ok((
            Caller { subject: claims.sub, region, role, school, bearer: Arc::from(token) },
            claims.exp,
            claims.jti,
            key_id,
        ))
    }

    /// Reads and verifies the `authorization` metadata of a request.
    pub fn verify_metadata(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller, TokenError> {
        let value = metadata.get("authorization").ok_or(TokenError::Missing)?;
        self.verify_authorization(value.to_str().map_err(|_| TokenError::Malformed)?)
    }

    /// Verifies the value of an `authorization` header: `Bearer <token>`.
    pub fn verify_authorization(&self, value: &str) -> Result<Caller, TokenError> {
        let token =
            value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(TokenError::Malformed)?;
        self.verify(token.trim())
    }
}

/// A school code as the registry keeps them: 1 to 20 letters and digits.
fn check_school_code(school_code: &str) -> Result<(), TokenError> {
    if (1..=20).contains(&school_code.len()) && school_code.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(TokenError::BadClaims(format!("{school_code:?} is not a school code")))
    }
}

/// The caller of an authenticated request, left in its extensions by the access layer every
/// service's server runs (`nol_runtime::access`).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| unauthenticated(&TokenError::Missing))
}

/// The id (`jti`) of a token, read without checking it (to revoke it).
pub fn token_id(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("jti")?.as_str().map(str::to_owned)
}

/// A new Ed25519 signing key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_signing_key_pem() -> Result<(String, String), TokenError> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = signing.to_pkcs8_pem(LineEnding::LF).map_err(|e| TokenError::Key(e.to_string()))?;
    let public_pem =
        signing.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| TokenError::Key(e.to_string()))?;
    Ok((private_pem.to_string(), public_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (TokenIssuer, TokenVerifier) {
        let (private_pem, public_pem) = generate_signing_key_pem().unwrap();
        (
            TokenIssuer::from_pem(private_pem.as_bytes()).unwrap(),
            TokenVerifier::from_pem(public_pem.as_bytes()).unwrap(),
        )
    }

    #[test]
    fn a_county_token_sees_its_county_only() {
        let (issuer, verifier) = keys();
        let xuanwu = RegionCode::parse("320102").unwrap();
        let token = issuer.issue("wang.li", xuanwu, Role::Caseworker, Duration::from_secs(60)).unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.region, xuanwu);
        assert_eq!(caller.role, Role::Caseworker);
        assert!(caller.sees(&xuanwu));
        assert!(caller.require_scope(&RegionCode::parse("320104").unwrap()).is_err());
        assert!(caller.require_scope(&RegionCode::parse("320000").unwrap()).is_err());
        assert!(caller.require_scope(&RegionCode::parse("341221").unwrap()).is_err());
        assert!(caller.require_role(&[Role::Supervisor], Action::CloseSupervisionItems).is_err());
    }

    #[test]
    fn tokens_from_another_key_or_tampered_are_refused() {
        let (issuer, _) = keys();
        let (_, other_verifier) = keys();
        let token =
            issuer.issue("x", RegionCode::parse("320000").unwrap(), Role::Supervisor, Duration::from_secs(60)).unwrap();
        assert!(matches!(other_verifier.verify(&token), Err(TokenError::Invalid)));
        let (issuer, verifier) = keys();
        let token =
            issuer.issue("x", RegionCode::parse("320000").unwrap(), Role::Supervisor, Duration::from_secs(60)).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(verifier.verify(&tampered), Err(TokenError::Invalid)));
    }

    #[test]
    fn audience_lifetime_revocation_and_rotation() {
        let (issuer, verifier) = keys();
        let verifier = verifier.for_deployment("nol-test", Duration::from_secs(3600));
        let region = RegionCode::parse("320102").unwrap();
        let hour = Duration::from_secs(3600);
        // Another audience, or a lifetime beyond the deployment's limit.
        let elsewhere = issuer.issue("x", region, Role::Caseworker, hour).unwrap();
        assert!(matches!(verifier.verify(&elsewhere), Err(TokenError::Invalid)));
        let issuer = issuer.with_audience("nol-test");
        let too_long = issuer.issue("x", region, Role::Caseworker, 2 * hour).unwrap();
        assert!(matches!(verifier.verify(&too_long), Err(TokenError::TooLong(_))));
        // Revoked by its id; others of the same caller still pass.
        let token = issuer.issue("x", region, Role::Caseworker, hour).unwrap();
        let other = issuer.issue("x", region, Role::Caseworker, hour).unwrap();
        let id = token_id(&token).unwrap();
        assert_ne!(Some(id.clone()), token_id(&other));
        verifier.clone().set_revoked(HashSet::from([id]));
        assert!(matches!(verifier.verify(&token), Err(TokenError::Revoked)));
        assert!(verifier.verify(&other).is_ok());
        // Rotation: the next key is trusted beside the current one, then alone.
        let (next_private, next_public) = generate_signing_key_pem().unwrap();
        let next = TokenIssuer::from_pem(next_private.as_bytes()).unwrap().with_audience("nol-test");
        let by_next = next.issue("x", region, Role::Caseworker, hour).unwrap();
        assert!(matches!(verifier.verify(&by_next), Err(TokenError::Invalid)));
        assert_eq!(verifier.key_ids(), std::slice::from_ref(&issuer.key_id));
        verifier.trust(&[next_public.as_bytes()]).unwrap();
        assert!(verifier.verify(&by_next).is_ok());
        assert!(matches!(verifier.verify(&other), Err(TokenError::Invalid)), "the old key is no longer trusted");
    }

    #[test]
    fn a_token_seen_before_is_answered_from_the_cache_and_checked_again_for_what_can_change() {
        use sha2::Digest;
        let (issuer, verifier) = keys();
        let region = RegionCode::parse("320102").unwrap();
        let token = issuer.issue("wang.li", region, Role::Caseworker, Duration::from_secs(600)).unwrap();
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        assert!(verifier.verified.get(&digest).is_none());
        let (first, exp) = verifier.verify_until(&token).unwrap();
        // Kept by the token's hash, for every clone.
        let known = verifier.clone().verified.get(&digest).expect("a verified token is kept");
        let (again, again_exp) = verifier.clone().verify_until(&token).unwrap();
        assert_eq!(
            (again.subject, again.region, again.role, again_exp),
            (first.subject, first.region, first.role, exp)
        );
        assert_eq!(&*again.bearer, token.as_str());
        // It holds until its expiry and the leeway, not a second longer.
        assert!(verifier.still_valid(&known, exp + EXPIRY_LEEWAY_SECS).is_some());
        assert!(verifier.still_valid(&known, exp + EXPIRY_LEEWAY_SECS + 1).is_none());
        // Revoked while kept: refused at once, and forgotten.
        verifier.set_revoked(HashSet::from([token_id(&token).unwrap()]));
        assert!(verifier.still_valid(&known, exp).is_none());
        assert!(matches!(verifier.verify(&token), Err(TokenError::Revoked)));
        assert!(verifier.verified.get(&digest).is_none());
        verifier.set_revoked(HashSet::new());
        assert!(verifier.verify(&token).is_ok());
        // Its key no longer trusted: refused at once.
        let (_, next_public) = generate_signing_key_pem().unwrap();
        verifier.trust(&[next_public.as_bytes()]).unwrap();
        assert!(matches!(verifier.verify(&token), Err(TokenError::Invalid)));
        // A deployment's own audience starts with nothing kept.
        let deployed = verifier.clone().for_deployment("nol-test", Duration::from_secs(3600));
        assert!(deployed.verified.get(&digest).is_none());
    }

    #[test]
    fn a_school_token_names_its_school_and_reaches_its_own_pupils_only() {
        let (issuer, verifier) = keys();
        let xuanwu = RegionCode::parse("320102").unwrap();
        let hour = Duration::from_secs(3600);
        let token = issuer.issue_for_school("school", xuanwu, "3201020001", hour).unwrap();
        let school = verifier.verify(&token).unwrap();
        assert_eq!((school.role, school.school.as_deref()), (Role::School, Some("3201020001")));
        assert!(school.require_school("3201020001").is_ok());
        assert!(matches!(school.require_school("3201020002"), Err(Denied::OtherSchool { .. })));
        // A school token of before the claim: refused for anything about pupils.
        let unnamed = verifier.verify(&issuer.issue("school", xuanwu, Role::School, hour).unwrap()).unwrap();
        assert!(matches!(unnamed.require_school("3201020001"), Err(Denied::NoSchool)));
        assert!(matches!(unnamed.own_school(), Err(Denied::NoSchool)));
        // The other roles are limited by region, not school.
        let caseworker = verifier.verify(&issuer.issue("c", xuanwu, Role::Caseworker, hour).unwrap()).unwrap();
        assert_eq!(caseworker.own_school().unwrap(), None);
        assert!(caseworker.require_school("3201020002").is_ok());
        assert!(issuer.issue_for_school("school", xuanwu, "../3201", hour).is_err());
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("king".parse::<Role>().is_err());
    }
}
