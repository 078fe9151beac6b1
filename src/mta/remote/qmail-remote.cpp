// qmail-remote - deliver one message by SMTP to a remote host. See qmail-remote(8).
//   qmail-remote host sender qqeh size recipient...
// The message is read from descriptor 0; the reports (qmail's r/h/s then K/Z/D, each ended by NUL) are
// written to descriptor 1 and the exit status is 0 once a report is written.
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/remote.hpp"

namespace {

void write_all(const std::string& s) {
    std::string_view rest = s;
    while (!rest.empty()) {
        ssize_t n = ::write(1, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // nobody reads: nothing to do about it
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

int report(const qv::RemoteResult& r) {
    write_all(qv::format_reports(r));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        if (argv[1][2] == 'v')
            std::fputs("qmail-remote " QV_VERSION "\n", stdout);
        else
            std::fputs(
                "usage: qmail-remote host sender qqeh size recipient...\n"
                "Delivers the message on descriptor 0 by SMTP to host's mail exchangers (or the relay\n"
                "control/smtproutes names) and writes qmail's reports to descriptor 1: r, h or s for each\n"
                "recipient, then K, Z or D for the message, each ended by a NUL byte. See qmail-remote(8).\n",
                stdout);
        return 0;
    }
    if (argc < 6) {
        std::fputs("qmail-remote: usage: qmail-remote host sender qqeh size recipient...\n", stderr);
        return 111;
    }
    ::signal(SIGPIPE, SIG_IGN);

    qv::RemoteMessage m;
    m.host = argv[1];
    m.sender = argv[2];
    m.qqeh = argv[3];
    std::string_view size = argv[4];
    std::uint64_t n = 0;
    auto r = std::from_chars(size.data(), size.data() + size.size(), n);
    if (!size.empty() && r.ec == std::errc() && r.ptr == size.data() + size.size()) m.size = n;
    for (int i = 5; i < argc; ++i) m.recipients.emplace_back(argv[i]);

    try {
        qv::Paths paths = qv::Paths::from_env();
        qv::RemoteConfig config;
        try {
            config = qv::RemoteConfig::load(paths);
        } catch (const qv::Error& e) {
            return report(
                qv::remote_failure('Z', std::string("Unable to read control files: ") + e.what() + ". (#4.3.0)"));
        }
        return report(qv::deliver_remote(paths, config, m, 0));
    } catch (const std::bad_alloc&) {
        return report(qv::remote_failure('Z', "Out of memory. (#4.3.0)"));
    } catch (const std::exception& e) {
        return report(qv::remote_failure('Z', std::string("qmail-remote: ") + e.what() + ". (#4.3.0)"));
    }
}
