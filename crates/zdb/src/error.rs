//! Command errors and the one table that maps them to 0-db's RESP error replies.

use crate::resp::Reply;
use zdb_core::Error as Core;

/// Why a command failed. Each variant is one reply string of 0-db (see [`message`]).
#[derive(Debug)]
pub enum CmdError {
    CommandNotSupported,
    UnexpectedArguments,
    InvalidArgument,
    InvalidArguments,
    TooManyArguments,
    PermissionDenied,
    NamespaceTooLong,
    NamespaceLocked,
    NamespaceFrozen,
    NamespaceGone,
    ReadOnly,
    ReplicaReadOnly,
    KeyTooLarge,
    InvalidKey,
    InternalError,
    KeyNotFound,
    InvalidCursorFormat,
    InvalidIndex,
    KscanDisabled,
    HistoryIndexQuery,
    NameNotAllowed,
    NamespaceNotAvailable,
    CouldNotCreateNamespace,
    CannotRemoveDefault,
    NamespaceDoesNotExist,
    CannotRemoveCurrent,
    NamespaceNotFound,
    CannotUpdateDefault,
    InvalidProperty,
    InvalidModeValue,
    SingleRuntimeMode,
    CannotChangeModeOfUsed,
    NamespaceProtected,
    AccessDenied,
    PasswordTooLong,
    OnlySecure,
    NoChallenge,
    InvalidHashLength,
    AuthenticationDisabled,
    Timeout,
    InvalidTimeout,
    UnknownCommandToWatch,
    FlushPublicDenied,
    UnknownIndexSubcommand,
    UnknownIndexDirtySubcommand,
    UnknownDataSubcommand,
    Eof,
    InvalidRequest,
    UnexpectedInternalError,
    Unauthorized,
    NotAValidCommand,
    TooManyClients,
    ReplicationFailed(String),
    /// An engine error, mapped by kind.
    Engine(Core),
}

impl From<Core> for CmdError {
    fn from(e: Core) -> CmdError {
        CmdError::Engine(e)
    }
}

/// The error table: 0-db's exact wording for every failure a client can see.
pub fn message(error: &CmdError) -> String {
    use CmdError::*;
    let text = match error {
        CommandNotSupported => "Command not supported",
        UnexpectedArguments => "Unexpected arguments",
        InvalidArgument => "Invalid argument",
        InvalidArguments => "Invalid arguments",
        TooManyArguments => "Too many arguments",
        PermissionDenied => "Permission denied",
        NamespaceTooLong => "Namespace too long",
        NamespaceLocked => "Namespace is temporarily locked (read-only)",
        NamespaceFrozen => "Namespace is temporarily frozen (read-write disabled)",
        NamespaceGone => "Your active namespace is not available anymore (probably removed).",
        ReadOnly => "Namespace is in read-only mode",
        ReplicaReadOnly => "This instance is a read-only replica",
        KeyTooLarge => "Key too large",
        InvalidKey => "Invalid key",
        InternalError => "Internal Error",
        KeyNotFound => "Key not found",
        InvalidCursorFormat => "Invalid key format",
        InvalidIndex => "Invalid index",
        KscanDisabled => "Command disabled in release code, not yet available",
        HistoryIndexQuery => "Invalid arguments (index query)",
        NameNotAllowed => "This name is not allowed",
        NamespaceNotAvailable => "This namespace is not available",
        CouldNotCreateNamespace => "Could not create namespace",
        CannotRemoveDefault => "Cannot remove default namespace",
        NamespaceDoesNotExist => "This namespace doesn't exists",
        CannotRemoveCurrent => "Cannot remove namespace you're currently using.",
        NamespaceNotFound => "Namespace not found",
        CannotUpdateDefault => "Cannot update default namespace",
        InvalidProperty => "Invalid property",
        InvalidModeValue => "Invalid property value (expected: user, seq)",
        SingleRuntimeMode => "This server instance is configured to use a single runtime mode",
        CannotChangeModeOfUsed => "Cannot change mode of used namespace",
        NamespaceProtected => "Namespace protected and private",
        AccessDenied => "Access denied",
        PasswordTooLong => "Password too long",
        OnlySecure => "Only SECURE extra method supported",
        NoChallenge => "No CHALLENGE requested, secure authentication not available",
        InvalidHashLength => "Invalid hash length",
        AuthenticationDisabled => "Authentication disabled",
        Timeout => "Timeout",
        InvalidTimeout => "Invalid timeout",
        UnknownCommandToWatch => "Unknown command to watch",
        FlushPublicDenied => "Flushing public namespace denied",
        UnknownIndexSubcommand => "Unknown INDEX subcommand",
        UnknownIndexDirtySubcommand => "Unknown INDEX DIRTY subcommand",
        UnknownDataSubcommand => "Unknown DATA subcommand",
        Eof => "EOF",
        InvalidRequest => "Invalid Request",
        UnexpectedInternalError => "Unexpected Internal Error",
        Unauthorized => "Unauthorized",
        NotAValidCommand => "This is not a valid command",
        TooManyClients => "Too many clients connected",
        ReplicationFailed(why) => return format!("Replication failed: {why}"),
        Engine(e) => match e {
            Core::KeyTooLarge => "Key too large",
            Core::ValueTooLarge => "Payload too big",
            Core::KeyNeeded => "Invalid argument, key needed",
            Core::OnlyUpdate => "Invalid key, only update authorized",
            Core::Worm => "Namespace is protected by worm mode",
            Core::WormDelete => "Cannot delete a key when namespace is in worm mode",
            Core::NoSpace => "No space left on this namespace",
            Core::KeyNotFound => "Key not found",
            Core::NamespaceNotFound => "Namespace not found",
            Core::NamespaceExists => "This namespace is not available",
            Core::NameNotAllowed => "This name is not allowed",
            Core::ModeInUse => "Cannot change mode of used namespace",
            Core::NoMoreData => "No more data",
            Core::InvalidCursor => "Invalid index",
            Core::NoMoreHistory => "No more history",
            Core::InvalidHistoryKey => "Invalid arguments (invalid key)",
            Core::Eof => "EOF",
            Core::InvalidEntry => "Invalid Request",
            Core::Io { .. } | Core::Corrupt { .. } | Core::ModeMismatch { .. } => {
                tracing::error!("engine failure: {e}");
                "Internal Error"
            }
        },
    };
    text.to_owned()
}

impl CmdError {
    pub fn reply(&self) -> Reply {
        Reply::Error(message(self))
    }
}
