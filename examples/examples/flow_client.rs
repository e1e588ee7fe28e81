//! The typed Flow client alone: an account's credits, then one image. Run with
//! `FLOW_ST=<session token> cargo run -p flow2api-examples --example flow_client` (or the ST as
//! its argument); `FLOW_*_BASE_URL` and `YESCAPTCHA_*` are read as the server reads them.
use flow2api_sdk::{captcha::YesCaptcha, flow::ImagePrompt, Config, FlowClient, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let st = std::env::args().nth(1).or(std::env::var("FLOW_ST").ok());
    let st = Secret::new(st.ok_or("usage: flow_client <ST>, or set FLOW_ST")?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let (flow, captcha) = (FlowClient::native(&config)?, YesCaptcha::native(&config)?);
    let at = flow.session(&st).await?.access_token; // the session token's access token
    let credits = flow.credits(&at).await?;
    println!("credits: {} ({})", credits.credits, credits.tier.label());
    let prompt = ImagePrompt::new("a lighthouse at dawn");
    let image = flow.image(&st, &at, &captcha, &prompt).await?;
    println!("image: {}", image.url);
    Ok(())
}
