#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nol_runtime::platform::run_main("cases", nol_cases::start).await
}
