use super::Hardshrink;
use crate::HardshrinkError;
use burn::config::Config;

/// Configuration of a [`Hardshrink`] layer: Burn's [`Config`], with `new()`, `with_lambd()`,
/// JSON `save` / `load` and `Display`.
///
/// `lambd` (PyTorch's name) defaults to 0.5; it must be a number ≥ 0, `+inf` included.
/// The functional [`hardshrink`](crate::hardshrink) accepts every λ PyTorch accepts; a layer
/// asks for a threshold that means one.
///
/// ```
/// use burn::config::Config;
/// use burn_hardshrink::HardshrinkConfig;
///
/// let act = HardshrinkConfig::new().with_lambd(0.3).init();
/// assert_eq!(act.lambd, 0.3);
/// assert!(HardshrinkConfig::new().with_lambd(-1.0).try_init().is_err());
///
/// // A JSON config written for Burn's own `HardShrinkConfig` (field `lambda`) loads too.
/// let config = HardshrinkConfig::load_binary(br#"{"lambda": 0.25}"#).unwrap();
/// assert_eq!(config.lambd, 0.25);
/// ```
// Written out rather than derived: `#[derive(Config)]` passes no serde attribute through, and the
// alias is what lets Burn's own `Config::load` read a `HardShrinkConfig` file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HardshrinkConfig {
    /// The threshold λ. Default: 0.5. Burn's spelling, `lambda`, is read too.
    #[serde(alias = "lambda")]
    pub lambd: f64,
}

impl Config for HardshrinkConfig {}

impl core::fmt::Display for HardshrinkConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&burn::config::config_to_json(self))
    }
}

impl Default for HardshrinkConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl HardshrinkConfig {
    /// The default configuration: λ = 0.5.
    pub fn new() -> Self {
        Self { lambd: 0.5 }
    }

    /// The configuration with threshold `lambd`.
    pub fn with_lambd(mut self, lambd: f64) -> Self {
        self.lambd = lambd;
        self
    }

    /// Builds the layer, or says why λ is not a threshold (NaN or negative).
    pub fn try_init(&self) -> Result<Hardshrink, HardshrinkError> {
        if self.lambd.is_nan() || self.lambd < 0.0 {
            return Err(HardshrinkError::InvalidLambda { lambd: self.lambd });
        }
        Ok(Hardshrink { lambd: self.lambd })
    }

    /// Builds the layer.
    ///
    /// # Panics
    ///
    /// When λ is NaN or negative, with the message of [`try_init`](Self::try_init)'s error.
    pub fn init(&self) -> Hardshrink {
        self.try_init().unwrap_or_else(|error| panic!("{error}"))
    }
}

/// Swap Burn's config for this one.
impl From<burn::nn::HardShrinkConfig> for HardshrinkConfig {
    fn from(config: burn::nn::HardShrinkConfig) -> Self {
        Self {
            lambd: config.lambda,
        }
    }
}

impl From<HardshrinkConfig> for burn::nn::HardShrinkConfig {
    fn from(config: HardshrinkConfig) -> Self {
        Self::new().with_lambda(config.lambd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threshold_is_half() {
        assert_eq!(HardshrinkConfig::new().lambd, 0.5);
        assert_eq!(HardshrinkConfig::new().init().lambd, 0.5);
    }

    #[test]
    fn rejects_nan_and_negative_thresholds_with_the_same_message() {
        for bad in [f64::NAN, -0.1, f64::NEG_INFINITY] {
            let config = HardshrinkConfig::new().with_lambd(bad);
            let error = config.try_init().unwrap_err();
            let message = error.to_string();
            assert!(message.contains("lambd must be a number >= 0"), "{message}");
            let panic = std::panic::catch_unwind(|| config.init()).unwrap_err();
            assert_eq!(panic.downcast_ref::<String>(), Some(&message));
        }
    }

    #[test]
    fn accepts_zero_and_infinity() {
        assert_eq!(HardshrinkConfig::new().with_lambd(0.0).init().lambd, 0.0);
        let inf = HardshrinkConfig::new().with_lambd(f64::INFINITY).init();
        assert_eq!(inf.lambd, f64::INFINITY);
    }

    #[test]
    fn loads_both_spellings_and_round_trips() {
        let burn_json =
            burn::config::config_to_json(&burn::nn::HardShrinkConfig::new().with_lambda(0.3));
        let loaded = HardshrinkConfig::load_binary(burn_json.as_bytes()).unwrap();
        assert_eq!(loaded.lambd, 0.3);
        let ours = HardshrinkConfig::new().with_lambd(0.7);
        let json = burn::config::config_to_json(&ours);
        assert_eq!(
            HardshrinkConfig::load_binary(json.as_bytes())
                .unwrap()
                .lambd,
            0.7
        );
        assert_eq!(ours.to_string(), json);
        let dir = std::env::temp_dir().join(format!("hardshrink-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("burn.json");
        std::fs::write(&file, burn_json).unwrap();
        assert_eq!(HardshrinkConfig::load(&file).unwrap().lambd, 0.3);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(HardshrinkConfig::load_binary(b"{\"lambda\": \"x\"}").is_err());
    }

    #[test]
    fn converts_burns_config() {
        let ours: HardshrinkConfig = burn::nn::HardShrinkConfig::new().with_lambda(0.2).into();
        assert_eq!(ours.lambd, 0.2);
        let back: burn::nn::HardShrinkConfig = ours.into();
        assert_eq!(back.lambda, 0.2);
    }
}
