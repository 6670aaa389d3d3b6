//! The settings that can allow a refused data connection, named as operators write them.
//!
//! fxpd's two FXP switches play the role of two IIS registry values (Microsoft KB Q247132);
//! [`iis_name`] gives that name, which fxpd adds to its refusal texts for operators who know IIS.

/// `fxp.allow_foreign_port`: PORT/EPRT may name an address other than the client's.
pub const ALLOW_FOREIGN_PORT: &str = "fxp.allow_foreign_port";
/// `fxp.allow_foreign_passive`: a passive port accepts a connection from a foreign address.
pub const ALLOW_FOREIGN_PASSIVE: &str = "fxp.allow_foreign_passive";
/// `fxp.allow_privileged_ports`: PORT/EPRT may name a port below 1024.
pub const ALLOW_PRIVILEGED_PORTS: &str = "fxp.allow_privileged_ports";
/// `fxp.allow_anonymous`: anonymous sessions may use foreign addresses.
pub const ALLOW_ANONYMOUS: &str = "fxp.allow_anonymous";
/// `fxp.peers`: the address blocks a foreign address must be in.
pub const PEERS: &str = "fxp.peers";
/// The users-file entry that lifts a `user-denied` refusal.
pub const USER_ALLOW: &str = "users file: fxp = \"allow\"";

/// The IIS registry value that plays the role of [`ALLOW_FOREIGN_PORT`].
pub const IIS_ENABLE_PORT_ATTACK: &str = "EnablePortAttack";
/// The IIS registry value that plays the role of [`ALLOW_FOREIGN_PASSIVE`].
pub const IIS_ENABLE_PASV_THEFT: &str = "EnablePASVTheft";

/// The IIS registry value that plays the same role as `setting`, if one does.
pub fn iis_name(setting: &str) -> Option<&'static str> {
    match setting {
        ALLOW_FOREIGN_PORT => Some(IIS_ENABLE_PORT_ATTACK),
        ALLOW_FOREIGN_PASSIVE => Some(IIS_ENABLE_PASV_THEFT),
        _ => None,
    }
}
