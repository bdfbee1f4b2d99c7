// `sqlx::migrate!` embeds the migrations folder at compile time; without this a migration added
// to it is left out until something else rebuilds the crate (sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
