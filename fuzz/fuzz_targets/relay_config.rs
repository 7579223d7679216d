//! The relay's configuration parser (SPEC §7): `RelayConfig::from_toml_str` on arbitrary
//! text. Nothing may panic; an accepted configuration passes `validate`; a rejected one is
//! one line.
#![no_main]

use assent_relay::RelayConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RelayConfig::from_toml_str(text) {
        Ok(config) => {
            if let Err(e) = config.validate() {
                panic!("an accepted relay config does not validate: {e}");
            }
            for a in &config.approvers {
                assert_eq!(config.approver_name(&a.key), Some(a.name.as_str()));
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(
                !line.contains(['\n', '\r']),
                "the error is not one line: {line:?}"
            );
        }
    }
});
