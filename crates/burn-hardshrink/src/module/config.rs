use super::Hardshrink;
use crate::HardshrinkError;
use burn::config::{Config, ConfigError};
use std::path::Path;

/// Configuration of a [`Hardshrink`] layer.
///
/// `lambd` (PyTorch's name) defaults to 0.5; it must be a number ≥ 0, `+inf` included.
/// The functional [`hardshrink`](crate::hardshrink) accepts every λ PyTorch accepts; a layer
/// asks for a threshold that means one.
///
/// ```
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
#[derive(Config, Debug)]
pub struct HardshrinkConfig {
    /// The threshold λ. Default: 0.5.
    #[config(default = "0.5")]
    pub lambd: f64,
}

impl HardshrinkConfig {
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

    /// Parses a JSON config; Burn's `HardShrinkConfig` spelling (`lambda`) is accepted too.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let invalid = |error: serde_json::Error| ConfigError::InvalidFormat(error.to_string());
        let mut value: serde_json::Value = serde_json::from_str(json).map_err(invalid)?;
        if let Some(fields) = value.as_object_mut()
            && !fields.contains_key("lambd")
            && let Some(lambda) = fields.remove("lambda")
        {
            fields.insert("lambd".to_string(), lambda);
        }
        serde_json::from_value(value).map_err(invalid)
    }

    /// Loads a JSON config file (either spelling of the field, see
    /// [`from_json`](Self::from_json)). Shadows [`Config::load`], which knows only `lambd`.
    pub fn load<P: AsRef<Path>>(file: P) -> Result<Self, ConfigError> {
        let path = file.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|_| ConfigError::FileNotFound(path.display().to_string()))?;
        Self::from_json(&json)
    }

    /// Loads a JSON config from bytes (either spelling of the field). Shadows
    /// [`Config::load_binary`].
    pub fn load_binary(data: &[u8]) -> Result<Self, ConfigError> {
        let json = std::str::from_utf8(data)
            .map_err(|_| ConfigError::InvalidFormat("the config is not UTF-8".to_string()))?;
        Self::from_json(json)
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
        assert_eq!(
            HardshrinkConfig::load_binary(burn_json.as_bytes())
                .unwrap()
                .lambd,
            0.3
        );
        let ours = HardshrinkConfig::new().with_lambd(0.7);
        let json = burn::config::config_to_json(&ours);
        assert_eq!(HardshrinkConfig::from_json(&json).unwrap().lambd, 0.7);
        let dir = std::env::temp_dir().join(format!("hardshrink-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("burn.json");
        std::fs::write(&file, burn_json).unwrap();
        assert_eq!(HardshrinkConfig::load(&file).unwrap().lambd, 0.3);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            HardshrinkConfig::from_json("{\"lambda\": \"x\"}"),
            Err(ConfigError::InvalidFormat(_))
        ));
    }

    #[test]
    fn converts_burns_config() {
        let ours: HardshrinkConfig = burn::nn::HardShrinkConfig::new().with_lambda(0.2).into();
        assert_eq!(ours.lambd, 0.2);
        let back: burn::nn::HardShrinkConfig = ours.into();
        assert_eq!(back.lambda, 0.2);
    }
}
