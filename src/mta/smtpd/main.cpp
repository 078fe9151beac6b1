// qmail-smtpd - receive mail by SMTP, under tcpserver, and hand it to the queue. See qmail-smtpd(8).
//   qmail-smtpd [hostname checkprogram subprogram...]
// With a host name and a checkpassword program (vchkpass), SMTP AUTH is offered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <cstring>
#include <exception>
#include <optional>

#include "qvmail/paths.hpp"
#include "qvmail/service.hpp"
#include "session.hpp"

namespace {

// The local port of the connection: TCPLOCALPORT, else the socket on descriptor 0.
std::optional<std::string> local_port() {
    if (const char* p = std::getenv("TCPLOCALPORT"); p && *p) return std::string(p);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(0, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
    if (ss.ss_family == AF_INET) return std::to_string(ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
    if (ss.ss_family == AF_INET6) return std::to_string(ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port));
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        if (argv[1][2] == 'v')
            std::fputs("qmail-smtpd " QV_VERSION "\n", stdout);
        else
            std::fputs("usage: qmail-smtpd [hostname checkprogram subprogram...]\n"
                       "Speaks SMTP on descriptors 0 and 1 (run it under tcpserver -x tcp.smtp.cdb) and hands each\n"
                       "message to the queue (qmail-queued, or QMAILQUEUE, or qmail-queue). With a host name and a\n"
                       "checkpassword program such as vchkpass, SMTP AUTH is offered. See qmail-smtpd(8).\n",
                       stdout);
        return 0;
    }
    ::signal(SIGPIPE, SIG_IGN);
    qv::smtpd::Config config;
    try {
        // the variables of the service on this port (service/qmail-smtpd.PORT/variables/, as envdir would
        // set them: REQUIREAUTH on 587), for those the environment does not set itself; the port from
        // tcpserver, else from the socket itself (inetd, socket activation)
        if (auto port = local_port())
            for (const auto& [name, value] : qv::service_variables(qv::Paths::from_env(), "qmail-smtpd." + *port))
                if (value && !std::getenv(name.c_str())) ::setenv(name.c_str(), value->c_str(), 1);
        config = qv::smtpd::load_config(argc, argv);
    } catch (const std::exception& e) {
        static const char reply[] = "421 4.3.0 unable to read controls\r\n";
        [[maybe_unused]] ssize_t n = ::write(1, reply, sizeof reply - 1);
        std::fprintf(stderr, "qmail-smtpd: pid %d: %s\n", static_cast<int>(::getpid()), e.what());
        return 1;
    }
    try {
        return qv::smtpd::run_session(config);
    } catch (const std::exception& e) {
        static const char reply[] = "421 4.3.0 internal error, closing the connection\r\n";
        [[maybe_unused]] ssize_t n = ::write(1, reply, sizeof reply - 1);
        std::fprintf(stderr, "qmail-smtpd: pid %d: %s\n", static_cast<int>(::getpid()), e.what());
        return 1;
    }
}
