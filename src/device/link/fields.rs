//! The structured parts of link messages (HELLO, payment requests, results) and the rules
//! their fields obey on the wire. It owns validation that protects the rest of the daemon
//! (request_id syntax as in the socket API, ISO 4217 currency codes, only masked card numbers,
//! passwords kept out of Debug output); it must not know frames or sequence numbers.

use std::fmt;

use super::details::SaleDetails;
use super::wire::{Reader, Writer};
use super::PayloadError;

/// Who is speaking, announced in HELLO so a technician cannot pair a display as a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    CardReader,
    DqrDisplay,
    Host,
}

impl Role {
    pub fn code(self) -> u8 {
        match self {
            Role::CardReader => 1,
            Role::DqrDisplay => 2,
            Role::Host => 3,
        }
    }

    pub fn from_code(value: u8) -> Result<Role, PayloadError> {
        match value {
            1 => Ok(Role::CardReader),
            2 => Ok(Role::DqrDisplay),
            3 => Ok(Role::Host),
            value => Err(PayloadError::InvalidByte {
                field: "role",
                value,
            }),
        }
    }
}

/// The HELLO payload: enough for `posbridge devices` to show what is on the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The highest link protocol version the sender speaks.
    pub protocol_version: u8,
    pub role: Role,
    pub model: String,
    pub firmware: String,
    pub serial: String,
}

/// Why a frame was refused. Unknown codes from newer firmware are kept as `Other` rather than
/// rejected: a NAK must still trigger a retransmit even if we do not know why it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NakReason {
    /// The frame's CRC did not match (the header seq is a best guess).
    BadCrc,
    /// The payload did not parse for its message type.
    Malformed,
    /// The message type is not one this peer handles.
    UnknownType,
    /// HELLO announced a protocol version this peer cannot speak.
    UnsupportedVersion,
    /// No HELLO exchanged yet (e.g. the device rebooted): the host must redo the HELLO exchange.
    NotReady,
    /// Any other code; `from_code` never produces a defined code here.
    Other(u8),
}

impl NakReason {
    pub fn code(self) -> u8 {
        match self {
            NakReason::BadCrc => 1,
            NakReason::Malformed => 2,
            NakReason::UnknownType => 3,
            NakReason::UnsupportedVersion => 4,
            NakReason::NotReady => 5,
            NakReason::Other(code) => code,
        }
    }

    pub fn from_code(code: u8) -> NakReason {
        match code {
            1 => NakReason::BadCrc,
            2 => NakReason::Malformed,
            3 => NakReason::UnknownType,
            4 => NakReason::UnsupportedVersion,
            5 => NakReason::NotReady,
            code => NakReason::Other(code),
        }
    }
}

/// The outcome of a card operation as the reader reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Approved,
    Declined,
    /// The reader could not complete the operation (card removed, acquirer unreachable...).
    Error,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Approved => 1,
            Outcome::Declined => 2,
            Outcome::Error => 3,
        }
    }

    fn from_code(value: u8) -> Result<Outcome, PayloadError> {
        match value {
            1 => Ok(Outcome::Approved),
            2 => Ok(Outcome::Declined),
            3 => Ok(Outcome::Error),
            value => Err(PayloadError::InvalidByte {
                field: "outcome",
                value,
            }),
        }
    }
}

/// An ISO 4217 alphabetic code, three uppercase ASCII letters (3 bytes on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn new(code: &str) -> Result<Currency, PayloadError> {
        let bytes: [u8; 3] = code.as_bytes().try_into().map_err(|_| invalid_currency())?;
        Currency::from_bytes(bytes)
    }

    pub(super) fn from_bytes(bytes: [u8; 3]) -> Result<Currency, PayloadError> {
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency(bytes))
        } else {
            Err(invalid_currency())
        }
    }

    pub fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII by construction, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

fn invalid_currency() -> PayloadError {
    PayloadError::Invalid {
        field: "currency",
        reason: "must be three uppercase ISO 4217 letters, e.g. INR",
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Acquirer login for the lifepay route. Debug never shows the password, so a logged message
/// cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The body of StartSale, StartRefund and StartCancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The operation's own id at the reader (posbridge sends the per-operation backend id,
    /// never the POS's request_id): the idempotency key the reader stores its result under.
    pub request_id: String,
    /// Minor units (paise, cents); never zero.
    pub amount: u64,
    pub currency: Currency,
    /// For refund/cancel: the reader's reference of the original sale (its RRN).
    pub primary_reference: Option<String>,
    pub credentials: Option<Credentials>,
    /// Version 2: the LIFE POS per-request details. `None` encodes the version 1 layout (the
    /// payload ends after the credentials), which a version 1 reader expects.
    pub details: Option<SaleDetails>,
}

impl PaymentRequest {
    pub(super) fn encode(&self, w: &mut Writer) -> Result<(), PayloadError> {
        check_request_id(&self.request_id)?;
        check_amount(self.amount)?;
        w.str8("request_id", &self.request_id)?;
        w.u64(self.amount);
        w.bytes(self.currency.as_bytes());
        w.opt_str8("primary_reference", self.primary_reference.as_deref())?;
        match &self.credentials {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.str8("login", &c.login)?;
                w.str8("password", &c.password)?;
            }
        }
        if let Some(details) = &self.details {
            details.encode(w)?;
        }
        Ok(())
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<PaymentRequest, PayloadError> {
        let request_id = r.str8("request_id")?;
        check_request_id(&request_id)?;
        let amount = r.u64("amount")?;
        check_amount(amount)?;
        let currency = Currency::from_bytes(r.fixed("currency")?)?;
        let primary_reference = r.opt_str8("primary_reference")?;
        let credentials = if r.present("credentials")? {
            Some(Credentials {
                login: r.str8("login")?,
                password: r.str8("password")?,
            })
        } else {
            None
        };
        // Version 1 ends here; a version 2 payload carries the details block.
        let details = if r.is_empty() {
            None
        } else {
            Some(SaleDetails::decode(r)?)
        };
        Ok(PaymentRequest {
            request_id,
            amount,
            currency,
            primary_reference,
            credentials,
            details,
        })
    }
}

/// The reader's answer to a start or a GetResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleResult {
    pub request_id: String,
    pub outcome: Outcome,
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    /// At most 10 digits visible (first 6, last 4), e.g. `411111******1111`.
    pub masked_pan: Option<String>,
    pub scheme: Option<String>,
    /// For the cashier, in plain words.
    pub message: String,
}

impl SaleResult {
    pub(super) fn encode(&self, w: &mut Writer) -> Result<(), PayloadError> {
        check_request_id(&self.request_id)?;
        if let Some(pan) = &self.masked_pan {
            check_masked_pan(pan)?;
        }
        w.str8("request_id", &self.request_id)?;
        w.u8(self.outcome.code());
        w.opt_str8("rrn", self.rrn.as_deref())?;
        w.opt_str8("approval_code", self.approval_code.as_deref())?;
        w.opt_str8("masked_pan", self.masked_pan.as_deref())?;
        w.opt_str8("scheme", self.scheme.as_deref())?;
        w.str16("message", &self.message)
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<SaleResult, PayloadError> {
        let request_id = r.str8("request_id")?;
        check_request_id(&request_id)?;
        let outcome = Outcome::from_code(r.u8("outcome")?)?;
        let rrn = r.opt_str8("rrn")?;
        let approval_code = r.opt_str8("approval_code")?;
        let masked_pan = r.opt_str8("masked_pan")?;
        if let Some(pan) = &masked_pan {
            check_masked_pan(pan)?;
        }
        Ok(SaleResult {
            request_id,
            outcome,
            rrn,
            approval_code,
            masked_pan,
            scheme: r.opt_str8("scheme")?,
            message: r.str16("message")?,
        })
    }
}

/// The socket API's rule: 1..64 of `[A-Za-z0-9._:-]`. Checked here too, so a reader echoing a
/// mangled id is caught at the edge instead of matching no journal entry.
pub(super) fn check_request_id(id: &str) -> Result<(), PayloadError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if (1..=64).contains(&id.len()) && id.chars().all(ok_char) {
        Ok(())
    } else {
        Err(PayloadError::Invalid {
            field: "request_id",
            reason: "must be 1 to 64 of A-Z a-z 0-9 . _ : -",
        })
    }
}

fn check_amount(amount: u64) -> Result<(), PayloadError> {
    if amount == 0 {
        return Err(PayloadError::Invalid {
            field: "amount",
            reason: "must be greater than zero (minor units)",
        });
    }
    Ok(())
}

/// A full card number must never reach our logs or journal; PCI allows at most the first six
/// and last four digits, so more than ten digits means the reader sent an unmasked PAN.
fn check_masked_pan(pan: &str) -> Result<(), PayloadError> {
    if pan.chars().filter(char::is_ascii_digit).count() > 10 {
        return Err(PayloadError::Invalid {
            field: "masked_pan",
            reason: "shows more than 10 digits; a full card number must never be sent",
        });
    }
    Ok(())
}
