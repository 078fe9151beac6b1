// One SMTP session of qmail-smtpd on descriptors 0 and 1, from the greeting to QUIT (or the client's
// going away). See qmail-smtpd(8).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qvmail/control.hpp"
#include "qvmail/paths.hpp"

namespace qv {
class Store;
class RelayPolicy;
class TlsStream;
}  // namespace qv

namespace qv::smtpd {

// Recipients of one message when neither control/maxrecipients nor MAXRECIPIENTS says (or says 0):
// ten times what RFC 5321 asks a server to take, and a bound on what a client can make it hold.
constexpr std::uint64_t kDefaultMaxRcpt = 1000;

// What qmail-smtpd reads once, when it starts: its arguments, control files and environment.
struct Config {
    Paths paths;
    std::string greeting;     // control/smtpgreeting, else control/me
    std::string localiphost;  // control/localiphost, else control/me
    std::string envnoathost;  // control/envnoathost, else control/me: the domain of an address without one
    int timeout = 1200;       // control/timeoutsmtpd: seconds to wait for the client
    std::uint64_t databytes = 0;  // control/databytes or DATABYTES: largest message, 0 no limit
    std::uint64_t maxrcpt = kDefaultMaxRcpt;  // control/maxrecipients or MAXRECIPIENTS (0: the default)
    std::filesystem::path servercert;  // control/servercert.pem: STARTTLS offered when it exists

    // SMTP AUTH: `qmail-smtpd hostname checkprogram subprogram...`
    std::string auth_hostname;
    std::vector<std::string> checkprogram;
    bool insecure_auth = false;  // ALLOW_INSECURE_AUTH: PLAIN and LOGIN without TLS
    bool require_auth = false;   // REQUIREAUTH: MAIL only after AUTH (submission, port 587)

    // the client, as tcpserver describes it
    std::string remoteip = "unknown";
    std::optional<std::string> remotehost, remoteinfo;
    std::string local = "unknown";             // TCPLOCALHOST, else TCPLOCALIP
    std::optional<std::string> relayclient;    // RELAYCLIENT, set by a tcp.smtp rule
    bool checkrelay = false;                   // CHECKRELAY: POP/IMAP-before-SMTP grants of the MariaDB store
    bool qmail_ext = false;                    // QMAIL_EXT: joe-ext is delivered to joe (as vdelivermail)

    bool auth_offered() const { return !auth_hostname.empty() && !checkprogram.empty(); }
};

// Reads the control files and the environment; throws Error when a control file cannot be read.
Config load_config(int argc, char** argv);

// Runs the session; returns the exit status (0 after QUIT, 1 when the client went away or timed out).
int run_session(const Config& config);

}  // namespace qv::smtpd
