#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nol_runtime::platform::run_main("reporting", nol_reporting::start).await
}
