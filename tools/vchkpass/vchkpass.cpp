// vchkpass - checkpassword for qvmail's mailboxes. See vchkpass(8).
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "../commands.hpp"

#include "qvmail/auth.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/lock.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vchkpass {

namespace {

// checkpassword's codes, IndiMail qmail-smtpd's 3, and Dovecot's 3 for a lookup of an unknown user.
constexpr int kRefused = 1, kMisuse = 2, kNoRelay = 3, kUnknownUser = 3, kTempFail = 111;

struct Args {
    std::optional<std::string> service;  // -s; else Dovecot's SERVICE; else smtp
    bool grant = false;
    bool no_grant = false;
    int fd = 3;
    std::vector<std::string> program;
};

void log_line(const std::string& text) {
    std::cerr << "vchkpass: " << text << '\n';
}

// The login, read whole from `fd` into `buf` (checkpassword sends at most 512 bytes); its size, or
// nullopt on a read error or when it does not fit.
std::optional<std::size_t> read_fd(int fd, char* buf, std::size_t size) {
    std::size_t have = 0;
    for (;;) {
        if (have == size) {
            errno = 0;
            return std::nullopt;
        }
        ssize_t n = ::read(fd, buf + have, size - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return have;
}

// Wipes the password (or CRAM digest) however the run ends.
struct WipeOnExit {
    AuthRequest& req;
    ~WipeOnExit() {
        wipe(req.secret);
        wipe(req.response);
    }
};

const char* remote_ip() {
    for (const char* v : {"TCP6REMOTEIP", "TCPREMOTEIP"})
        if (const char* ip = std::getenv(v); ip && *ip) return ip;
    return nullptr;
}

// POP/IMAP-before-SMTP: a login from this IP lets the mailbox relay for RELAY_CLEAR_MINUTES. A grant
// that cannot be recorded is logged; the login itself still succeeds.
void record_grant(const Paths& paths, Store& store, const AuthResult& r, const Program& prog) {
    const char* ip = remote_ip();
    if (!ip) {
        log_line("no relay grant for " + r.address + ": neither TCP6REMOTEIP nor TCPREMOTEIP is set");
        return;
    }
    try {
        std::optional<FileLock> lock;
        if (store.grants_in_rules()) lock.emplace(admin_lock(paths, std::chrono::seconds(prog.common.lock_wait)));
        grant_relay(paths, store, r.address, ip, std::time(nullptr), false);
    } catch (const std::exception& e) {
        log_line("no relay grant for " + r.address + " from " + ip + ": " + e.what());
    }
}

// IndiMail's lastauth: the service, the client's address and the time of each login. A login that
// cannot be recorded is logged and still succeeds. NOLASTAUTH turns the record off.
void record_login(Store& store, const AuthResult& r, const std::string& service) {
    if (std::getenv("NOLASTAUTH") || !r.domain || !r.user) return;
    const char* ip = remote_ip();
    try {
        store.record_login(*r.domain, *r.user, LoginRecord{service.substr(0, 10), ip ? ip : "", std::time(nullptr)});
    } catch (const std::exception& e) {
        log_line("login of " + r.address + " not recorded: " + e.what());
    }
}

// Where the login came from: -s, else the SERVICE variable Dovecot sets (imap, pop3, submission...),
// else smtp (qmail-smtpd sets none). An unknown -s is a usage error; an unknown SERVICE is reported
// as nullopt with `unknown` set, since a login for a service vchkpass cannot check must be refused.
// Dovecot's SERVICE, when it is what names the service (no -s); else nullptr.
const char* dovecot_service(const Args& a) {
    const char* env = a.service ? nullptr : std::getenv("SERVICE");
    return env && *env ? env : nullptr;
}

std::optional<AuthService> which_service(const Args& a, std::string& unknown) {
    if (a.service) {
        auto s = parse_auth_service(*a.service);
        if (!s) throw Error(Exit::usage, "--service " + *a.service + ": expected smtp, submission, pop3 or imap");
        return s;
    }
    const char* env = dovecot_service(a);
    if (!env) return AuthService::smtp;
    auto s = parse_auth_service(env);
    if (!s) unknown = env;
    return s;
}

// USER, HOME and the rest for PROGRAM, and the fields Dovecot's userdb takes from checkpassword-reply:
// each set as a variable and named in EXTRA (after any names EXTRA already holds). A mailbox that lives
// on another host sharing the database adds Dovecot's proxy fields (proxy, host), so that a Dovecot
// proxy in front of the hosts sends the login there.
void set_login_environment(const AuthResult& r, const MailboxPlace& place) {
    ::setenv("USER", r.address.c_str(), 1);
    ::setenv("HOME", r.user->dir.c_str(), 1);
    ::setenv("SHELL", "NOLOGIN", 1);
    ::setenv("AUTHENTICATED", r.address.c_str(), 1);
    const char* old = std::getenv("EXTRA");
    std::string extra = old ? old : "";
    auto fields = userdb_fields(r);
    if (!place.local && place.where) {
        fields.emplace_back("PROXY", "y");
        fields.emplace_back("HOST", place.where->address);
    }
    for (auto& [name, value] : fields) {
        ::setenv(name.c_str(), value.c_str(), 1);
        if ((" " + extra + " ").find(" " + name + " ") != std::string::npos) continue;
        if (!extra.empty()) extra += ' ';
        extra += name;
    }
    ::setenv("EXTRA", extra.c_str(), 1);
}

int run(const Program& prog, const Args& a) {
    std::string unknown_service;
    auto service = which_service(a, unknown_service);
    // Dovecot's userdb (and passdb) lookups: AUTHORIZED=1, no password to check; answered 3 when the
    // user is unknown and, through checkpassword-reply, 2 when found (after AUTHORIZED=2).
    const char* authorized = std::getenv("AUTHORIZED");
    const bool lookup = authorized && std::string_view(authorized) == "1";
    const int refused = lookup ? kUnknownUser : kRefused;
    const int misuse = lookup ? kTempFail : kMisuse;  // 2 would mean "found" to Dovecot
    char buf[4096];
    auto size = read_fd(a.fd, buf, sizeof buf);
    if (!size) {
        int err = errno;
        wipe(buf, sizeof buf);
        log_line("cannot read the login from descriptor " + std::to_string(a.fd) + ": " +
                 (err ? std::strerror(err) : "more than 4096 bytes"));
        return misuse;
    }
    auto req = parse_checkpassword(std::string_view(buf, *size));
    wipe(buf, sizeof buf);
    if (!req) {
        log_line("malformed login data on descriptor " + std::to_string(a.fd) + " (want user\\0password\\0...)");
        return misuse;
    }
    WipeOnExit wipe_request{*req};
    const char* ip = remote_ip();
    std::string from = ip ? std::string(" from ") + ip : "";
    std::string what = lookup ? std::string("userdb lookup") : service ? std::string(to_string(*service)) + " login"
                                                                       : "login for service " + unknown_service;
    if (lookup && std::getenv("CREDENTIALS_LOOKUP")) {
        log_line(what + " of " + req->user + ": Dovecot asks for stored credentials (a non-plaintext mechanism); "
                 "vchkpass only checks passwords: allow PLAIN and LOGIN");
        return kTempFail;
    }
    if (lookup && !req->secret.empty()) {
        log_line(what + " of " + req->user + ": AUTHORIZED=1 came with a password; refused");
        return refused;
    }
    if (!lookup && !service) {
        log_line(what + from + " refused: SERVICE=" + unknown_service +
                 " is not smtp, submission, pop3 or imap, so no NO_* flag can be checked");
        return kRefused;
    }
    try {
        Paths paths = Paths::from_env();
        auto store = open_store(paths, prog.mysql);
        AuthResult r = lookup ? lookup_mailbox(paths, *store, req->user) : authenticate(paths, *store, *req, *service);
        wipe(req->secret);  // before PROGRAM is run: exec skips destructors
        wipe(req->response);
        if (r.status == AuthStatus::refused) {
            log_line(what + " refused" + from + ": " + r.reason);
            return refused;
        }
        if (r.status == AuthStatus::no_relay) {
            // exit 3 tells qmail-smtpd "local recipients only"; Dovecot (SERVICE=submission) would read it
            // as an unknown user, and its submission service cannot hold a login to local recipients
            if (dovecot_service(a)) {
                log_line(what + " of " + r.address + from + " refused: NO_RELAY is set, and Dovecot's "
                         "submission service cannot keep it to local recipients");
                return kRefused;
            }
            log_line(r.address + from + ": authenticated, but NO_RELAY is set: may not relay");
            record_login(*store, r, std::string(to_string(*service)));
            return kNoRelay;
        }
        bool want_grant = !lookup && !a.no_grant && (a.grant || std::getenv("OPEN_SMTP")) &&
                          !std::getenv("NORELAY") && *service != AuthService::smtp &&
                          !(r.user->gid_flags & userflag::no_relay);
        if (want_grant) record_grant(paths, *store, r, prog);
        if (!lookup) {
            const char* named = dovecot_service(a);
            record_login(*store, r, named ? named : std::string(to_string(*service)));
        }
        if (prog.common.verbose) log_line(what + " of " + r.address + from);
        MailboxPlace place;
        if (r.domain) place = mailbox_place(paths, *store, *r.domain, r.user->name);
        if (!place.local && prog.common.verbose)
            log_line(r.address + " lives on host " + place.host +
                     (place.where ? " (" + place.where->address + "): proxy fields set" : ", whose address is unknown"));
        set_login_environment(r, place);
        if (lookup) ::setenv("AUTHORIZED", "2", 1);
        if (a.program.empty()) return 0;
        if (::chdir(r.user->dir.c_str()) != 0)
            log_line("cannot change to " + r.user->dir + ": " + std::strerror(errno));
    } catch (const std::exception& e) {  // the store is down, a file unreadable: try again later
        log_line(what + from + ": temporary failure: " + e.what());
        return kTempFail;
    }
    std::vector<char*> argv;
    for (auto& s : a.program) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    log_line("cannot run " + a.program[0] + ": " + std::strerror(errno));
    return kTempFail;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vchkpass");
    prog.common.lock_wait = 5;  // a login should not wait long for the admin lock (files store grants)
    Args a;
    CLI::App app{
        "Check a login against qvmail's mailboxes, as a checkpassword program: read user\\0password\\0 from\n"
        "descriptor 3, then run PROGRAM with its arguments: all the words after the options (or after --).",
        "vchkpass"};
    app.set_version_flag("--version", QV_VERSION);
    auto* service = app.add_option("-s,--service", a.service,
                   "smtp, submission (as smtp), pop3 (or pop) or imap: which NO_* flag applies (default: the SERVICE\n"
                   "variable Dovecot sets, else smtp)");
    app.add_flag("-g,--grant", a.grant,
                 "After a POP3/IMAP login, let the mailbox relay from TCPREMOTEIP (as when OPEN_SMTP is set)");
    app.add_flag("--no-grant", a.no_grant, "Never record a relay grant, even when OPEN_SMTP is set");
    app.add_option("--fd", a.fd, "Read the login from this descriptor instead of 3")->check(CLI::Range(0, 1023));
    add_common_options(app, prog.common, opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    // PROGRAM and its arguments: everything from the first word that is not an option, untouched
    app.prefix_command();
    app.footer(
        "Dovecot: without -s, the service is Dovecot's SERVICE; AUTHORIZED=1 asks for a lookup without a\n"
        "password; userdb_uid, userdb_gid and userdb_mail are set and named in EXTRA. Each login is recorded\n"
        "(service, TCPREMOTEIP, time: IndiMail's lastauth, read by vdeloldusers) unless NOLASTAUTH is set.\n\n"
        "Exit status: 0 verified (or PROGRAM's status); 1 refused: unknown user, wrong password, the service\n"
        "is disabled for the mailbox, or SERVICE is unknown; 2 no or malformed login data; 3 smtp only:\n"
        "verified, but the mailbox has NO_RELAY (IndiMail's qmail-smtpd then accepts local recipients only;\n"
        "behind Dovecot's submission service such a login is refused, 1), or a lookup of an unknown mailbox; 64 usage; 111 temporary failure (the store cannot be read, the\n"
        "database is down). See vchkpass(8).");
    app.callback([&] {
        a.program = app.remaining();
        if (!a.program.empty() && a.program.front() == "--") a.program.erase(a.program.begin());
        prog.action = [&] { return run(prog, a); };
    });
    prog.value_completions[service] = [](const std::string&) {
        return std::vector<std::string>{"smtp", "submission", "pop3", "imap"};
    };
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vchkpass
