#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nol_runtime::platform::run_main("registry", nol_registry::start).await
}
