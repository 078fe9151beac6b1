// Checking a login against the store: the checkpassword interface that vchkpass serves to
// qmail-smtpd (SMTP AUTH) and to POP3/IMAP servers (Dovecot's checkpassword passdb).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qvmail/password.hpp"
#include "qvmail/store.hpp"

namespace qv {

struct Paths;

enum class AuthService { smtp, pop3, imap };
// smtp (submission, Dovecot's name for its SMTP submission service, is smtp too), pop3 (pop), imap;
// nullopt for any other name.
std::optional<AuthService> parse_auth_service(std::string_view name);
std::string_view to_string(AuthService s) noexcept;

// What arrives on fd 3: `user\0password\0timestamp\0`, or IndiMail's qmail-smtpd variant
// `user\0challenge\0response\0method\0`, where method 3 (a byte or a digit) is CRAM-MD5 and the
// response its 32 lower-case hex digits.
struct AuthRequest {
    std::string user;
    std::string secret;    // the password, or the CRAM challenge
    std::string response;  // the checkpassword timestamp, or the CRAM digest
    bool cram_md5 = false;
};
// Parses the fd 3 data; nullopt when it is not two or more NUL-terminated fields, or a CRAM-MD5
// request without a well-formed digest.
std::optional<AuthRequest> parse_checkpassword(std::string_view data);

enum class AuthStatus {
    ok,        // exit 0: verified, may use the service
    no_relay,  // exit 3 (smtp): verified, but the mailbox has NO_RELAY
    refused,   // exit 1: unknown user, wrong password, or the service is disabled for the mailbox
};

struct AuthResult {
    AuthStatus status = AuthStatus::refused;
    std::string address;  // user@domain, once the user names one of our mailboxes
    std::string reason;   // why it was refused, for the log (never for the client)
    std::optional<UserRecord> user;
    Owner owner{0, 0};  // the domain's uid and gid, which its mailboxes' files belong to (once found)
    std::optional<DomainRef> domain;  // the mailbox's (real) domain, once found
};

// Verifies the request. Every refusal before the password check (malformed or unknown address,
// unknown domain or mailbox, a mailbox without a usable hash) still verifies the password against a
// fixed hash of the default method, so that the time taken does not tell which addresses exist. The
// service flags are checked after the password. Throws Error 69 when the store cannot be read.
AuthResult authenticate(const Paths& paths, Store& store, const AuthRequest& req, AuthService service);

// A lookup without a password, as Dovecot's userdb asks a checkpassword program (AUTHORIZED=1): status
// ok when `user` names one of our mailboxes, refused (with the reason) when it does not. No service
// flag applies: the lookup serves deliveries (LMTP) and administration, not a login. Throws as
// authenticate().
AuthResult lookup_mailbox(const Paths& paths, Store& store, std::string_view user);

// What Dovecot's userdb needs of the mailbox `r` found, as the extra fields a checkpassword program
// hands back (checkpassword-reply passes each through from the environment variable of that name):
// userdb_uid and userdb_gid (the domain's owner) and userdb_mail (maildir:<home>/Maildir). The home
// itself goes through HOME.
std::vector<std::pair<std::string, std::string>> userdb_fields(const AuthResult& r);

// Lower-case hex HMAC-MD5 of `challenge` keyed with `password` (RFC 2195).
std::string cram_md5_digest(std::string_view password, std::string_view challenge);

// A fixed crypt(3) hash of `method`, verified instead of a real one for unknown users.
std::string_view dummy_hash(HashMethod method) noexcept;
// How many dummy verifications this process has run (for tests).
std::uint64_t dummy_verifications() noexcept;

}  // namespace qv
