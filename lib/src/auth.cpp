#include "qvmail/auth.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <filesystem>

#include "qvmail/address.hpp"
#include "qvmail/control.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

namespace {

std::atomic<std::uint64_t> g_dummy_verifications{0};

bool is_lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

// The mailbox's service flag for `service`.
std::uint32_t service_flag(AuthService s) {
    switch (s) {
        case AuthService::smtp:
            return userflag::no_smtp;
        case AuthService::pop3:
            return userflag::no_pop;
        case AuthService::imap:
            return userflag::no_imap;
    }
    return 0;
}

}  // namespace

std::optional<AuthService> parse_auth_service(std::string_view name) {
    if (name == "smtp" || name == "submission") return AuthService::smtp;
    if (name == "pop3" || name == "pop") return AuthService::pop3;
    if (name == "imap") return AuthService::imap;
    return std::nullopt;
}

std::string_view to_string(AuthService s) noexcept {
    switch (s) {
        case AuthService::smtp:
            return "smtp";
        case AuthService::pop3:
            return "pop3";
        case AuthService::imap:
            return "imap";
    }
    return "?";
}

std::optional<AuthRequest> parse_checkpassword(std::string_view data) {
    std::vector<std::string_view> fields;
    while (!data.empty()) {
        std::size_t nul = data.find('\0');
        if (nul == std::string_view::npos) break;  // an unterminated tail is ignored, as checkpassword does
        fields.push_back(data.substr(0, nul));
        data.remove_prefix(nul + 1);
    }
    if (fields.size() < 2 || fields[0].empty()) return std::nullopt;
    AuthRequest r;
    r.user = fields[0];
    r.secret = fields[1];
    if (fields.size() >= 3) r.response = fields[2];
    // IndiMail's qmail-smtpd sends its AUTH method: 3 is CRAM-MD5 (1 LOGIN, 2 PLAIN). Only that says
    // CRAM: guessing from the shape of the fields would let a password that holds NULs pass for a
    // challenge and a digest the client chose itself.
    if (fields.size() >= 4) r.cram_md5 = fields[3] == "3" || fields[3] == std::string_view("\x03", 1);
    if (r.cram_md5 && !(r.response.size() == 32 && is_lower_hex(r.response))) return std::nullopt;
    return r;
}

std::string cram_md5_digest(std::string_view password, std::string_view challenge) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!::HMAC(EVP_md5(), password.data(), static_cast<int>(password.size()),
                reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size(), out, &len))
        throw Error(Exit::software, "HMAC-MD5 failed");
    static const char hex[] = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s += hex[out[i] >> 4];
        s += hex[out[i] & 15];
    }
    return s;
}

std::string_view dummy_hash(HashMethod method) noexcept {
    // Hashes of a throw-away string, made with each method's default cost (as hash_password uses).
    switch (method) {
        case HashMethod::md5:
            return "$1$Qv0dummy$oPewX0QYtHt0YCP9vf7o3.";
        case HashMethod::sha256:
            return "$5$Qv0dummySalt0000$bkhjPCQmayv4r2pMz8Dzdka/bxYwzk77tXBTgFRtcb0";
        case HashMethod::sha512:
            return "$6$Qv0dummySalt0000$287oz47tr3HjhvSjdwPfi6MueOf69Gn8HZinVdJUJT0MS6Yxa6cVYEgZ0mWFl5zkR88FGUvAK4Br19"
                   "PMvqC6l0";
        case HashMethod::yescrypt:
            return "$y$j9T$lNLPVZ4PYJLPhZrQVl4RV.$m6RlrCqb3OATGh9IRFKUwyJLJGH1FJWYgyYW8OMFE/5";
    }
    return "";
}

std::uint64_t dummy_verifications() noexcept {
    return g_dummy_verifications.load();
}

namespace {

// The mailbox `user` names (a user without '@' gets control/defaultdomain's first domain), into `r`;
// the reason when there is none. `method` becomes the domain's hash method once the domain is known.
std::optional<std::string> find_mailbox(const Paths& paths, Store& store, std::string_view name, AuthResult& r,
                                        HashMethod& method) {
    std::string user(name);
    if (user.find('@') == std::string::npos) {
        ControlFile def = ControlFile::load(paths.control("defaultdomain"));
        auto entries = def.entries();
        if (entries.empty()) return "no domain in the user name, and no control/defaultdomain";
        user += "@" + entries[0];
    }
    Address a;
    try {
        a = parse_address(user);
    } catch (const Error& e) {
        return std::string("not an address: ") + e.what();
    }
    r.address = a.str();
    auto d = find_domain(paths, a.domain);
    if (!d) return "no domain " + a.domain;
    method = domain_hash_method(paths, *d);
    r.user = store.get_user(d->ref(), a.local);
    if (!r.user) return "no mailbox " + a.str();
    r.owner = d->owner;
    r.domain = d->ref();
    return std::nullopt;
}

}  // namespace

AuthResult authenticate(const Paths& paths, Store& store, const AuthRequest& req, AuthService service) {
    AuthResult r;
    HashMethod method = kDefaultHashMethod;
    if (paths.password_hash)
        if (auto m = parse_hash_method(*paths.password_hash)) method = *m;

    // Refused before the password could be checked: spend the same work on a fixed hash.
    auto refuse_early = [&](std::string why) {
        if (!req.cram_md5) {
            verify_password(req.secret, dummy_hash(method));
            ++g_dummy_verifications;
        }
        r.status = AuthStatus::refused;
        r.reason = std::move(why);
        r.user.reset();
        return r;
    };

    if (auto why = find_mailbox(paths, store, req.user, r, method)) return refuse_early(std::move(*why));
    const UserRecord& u = *r.user;
    const std::string address = r.address;
    bool match = false;
    if (req.cram_md5) {
        if (!u.scram.starts_with("{CRAM}"))
            return refuse_early("CRAM-MD5: no clear-text credentials for " + address + " (vpasswd -C stores them)");
        std::string expect = cram_md5_digest(std::string_view(u.scram).substr(6), req.secret);
        match = equal_constant_time(expect, req.response);
    } else {
        if (!is_crypt_hash(u.passwd)) return refuse_early("the stored password of " + address + " is not a hash");
        match = verify_password(req.secret, u.passwd);
    }
    if (!match) {
        r.reason = "wrong password for " + address;
        r.user.reset();
        return r;
    }
    if (u.gid_flags & service_flag(service)) {
        r.reason = std::string(to_string(service)) + " is disabled for " + address;
        r.user.reset();
        return r;
    }
    r.status =
        (service == AuthService::smtp && (u.gid_flags & userflag::no_relay)) ? AuthStatus::no_relay : AuthStatus::ok;
    return r;
}

AuthResult lookup_mailbox(const Paths& paths, Store& store, std::string_view user) {
    AuthResult r;
    HashMethod method = kDefaultHashMethod;
    if (auto why = find_mailbox(paths, store, user, r, method)) {
        r.reason = std::move(*why);
        r.user.reset();
        return r;
    }
    r.status = AuthStatus::ok;
    return r;
}

std::vector<std::pair<std::string, std::string>> userdb_fields(const AuthResult& r) {
    if (!r.user) return {};
    return {{"userdb_uid", std::to_string(r.owner.uid)},
            {"userdb_gid", std::to_string(r.owner.gid)},
            {"userdb_mail", "maildir:" + (std::filesystem::path(r.user->dir) / "Maildir").string()}};
}

}  // namespace qv
