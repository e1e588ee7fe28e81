//! The typed clients over reqwest and tokio, from a [`Config`]: for programs that call Flow
//! (or a captcha provider) without the gateway.

use std::sync::Arc;

use super::{ReqwestHttp, TokioClock};
use crate::captcha::{YesCaptcha, YesCaptchaConfig};
use crate::{Config, FlowClient};

impl FlowClient {
    /// A client over [`ReqwestHttp`] and [`TokioClock`] for `config`'s `FLOW_LABS_BASE_URL`
    /// and `FLOW_API_BASE_URL`. Must be used inside a tokio runtime.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn native(config: &Config) -> Result<Self, reqwest::Error> {
        Ok(Self::new(
            Arc::new(ReqwestHttp::new()?),
            Arc::new(TokioClock),
            &config.labs_base_url,
            &config.api_base_url,
        ))
    }
}

impl YesCaptcha {
    /// The solver `config`'s `YESCAPTCHA_*` and `CAPTCHA_*` settings describe, over
    /// [`ReqwestHttp`] and [`TokioClock`]. Must be used inside a tokio runtime.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn native(config: &Config) -> Result<Self, reqwest::Error> {
        Ok(Self::new(
            Arc::new(ReqwestHttp::new()?),
            Arc::new(TokioClock),
            YesCaptchaConfig::from(config),
        ))
    }
}
