#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nol_runtime::platform::run_main("transfer", nol_transfer::start).await
}
