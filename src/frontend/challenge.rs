//! The words of the front-end's second factor (RFC 2865 §4.4 Access-Challenge): the
//! Reply-Message of each challenge and refusal that [`crate::login::radius`] decides.

use std::borrow::Cow;

use crate::login::CodeRefusal as Refusal;
use crate::login::radius::Prompt;

/// The Reply-Message of an Access-Challenge.
pub const PROMPT: &str = "Enter the code from your authenticator app";
/// The Reply-Message of an Access-Challenge after a code was sent by SMS.
pub const PROMPT_SMS: &str = "Enter the code sent to your phone by SMS";
/// The Reply-Message of an Access-Challenge after a code was sent by e-mail.
pub const PROMPT_EMAIL: &str = "Enter the code sent to your e-mail address";
/// The Reply-Message when a one-time code could not be delivered and `failmode` is secure.
pub const DELIVERY_FAILED: &str = "The one-time code could not be delivered; try again later";
/// The Reply-Message for a wrong code.
pub const INVALID_CODE: &str = "Invalid code";
/// The Reply-Message for a State that is unknown, spent, expired, or someone else's.
pub const UNKNOWN_CHALLENGE: &str = "Unknown or expired challenge";
/// The Reply-Message for a user who owes a second factor and has no way to give one.
pub const NOT_ENROLLED: &str =
    "A second factor is required: pair an authenticator app through the API first";
/// The Reply-Message for a second factor that cannot be checked now.
pub const MFA_UNAVAILABLE: &str = "Second factor unavailable";

/// The Reply-Message of an Access-Challenge with `prompt`.
pub fn prompt(prompt: Prompt) -> &'static str {
    match prompt {
        Prompt::App => PROMPT,
        Prompt::Sms => PROMPT_SMS,
        Prompt::Email => PROMPT_EMAIL,
    }
}

/// The Reply-Message of an Access-Reject for `refusal`.
pub fn refusal(refusal: Refusal) -> Cow<'static, str> {
    match refusal {
        Refusal::InvalidCode => INVALID_CODE.into(),
        Refusal::LockedOut(seconds) => {
            format!("Too many failed codes: locked out, try again in {seconds} seconds").into()
        }
        Refusal::UnknownChallenge => UNKNOWN_CHALLENGE.into(),
        Refusal::NotEnrolled => NOT_ENROLLED.into(),
        Refusal::DeliveryFailed => DELIVERY_FAILED.into(),
        Refusal::Unavailable => MFA_UNAVAILABLE.into(),
    }
}
