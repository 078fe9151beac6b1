// vdelivermail, vfilter - deliver one message to a mailbox of a virtual domain, from a .qmail-default
// line. See vdelivermail(8).
//   | /usr/sbin/vdelivermail '' HANDLER     the address from EXT (empty: postmaster) and HOST, the
//                                           sender from SENDER, as qmail-local sets them
//   vdelivermail -- user dir local dash ext domain sender aliasempty qqeh
//                                           qmail-local's arguments (as QMAILLOCAL runs it)
// The message is on standard input. Exit 0 delivered (or discarded), 100 permanent failure (the text on
// standard output becomes the bounce), 111 temporary failure. vfilter applies the mail filter rules
// first; vdelivermail applies them when the domain's .qmail-default runs vfilter.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "qvmail/error.hpp"
#include "qvmail/local_delivery.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace {

#ifndef QV_VFILTER
constexpr const char* kName = "vdelivermail";
#else
constexpr const char* kName = "vfilter";
#endif

int finish(const qv::DeliveryOutcome& o) {
    std::string text = o.text;
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    switch (o.kind) {
        case qv::DeliveryOutcome::success: return 0;
        case qv::DeliveryOutcome::permanent: return 100;
        case qv::DeliveryOutcome::temporary: return 111;
    }
    return 111;
}

int temporary(const std::string& why) {
    return finish({qv::DeliveryOutcome::temporary, std::string(kName) + ": " + why + " (#4.3.0)"});
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        if (argv[1][2] == 'v') {
            std::printf("%s %s\n", kName, QV_VERSION);
        } else {
            std::printf("usage: %s '' HANDLER            (a .qmail-default line: EXT, HOST, SENDER from qmail-local)\n"
                        "       %s -- user dir local dash ext domain sender aliasempty qqeh   (as QMAILLOCAL)\n"
                        "Delivers the message on standard input to a mailbox of a virtual domain (its Maildir, within\n"
                        "its quota), an alias, or the domain's handler for unknown addresses (HANDLER: delete,\n"
                        "bounce-no-mailbox, a Maildir, an address, domain:host:port).%s\n"
                        "Exit 0 delivered, 100 permanent failure, 111 temporary failure. See vdelivermail(8).\n",
                        kName, kName,
#ifdef QV_VFILTER
                        "\nThe mail filter rules (vcfilter) are applied first."
#else
                        ""
#endif
            );
        }
        return 0;
    }
    std::string local, domain, sender;
    std::optional<std::string> handler;
    if (argc == 3) {  // | vdelivermail '' handler
        local = env("EXT");
        domain = env("HOST");
        sender = env("SENDER");
        handler = argv[2];
    } else if (argc == 11) {  // qmail-local's arguments
        local = argv[6];
        domain = argv[7];
        sender = argv[8];
    } else {
        std::fprintf(stdout, "%s: invalid number of arguments (see %s --help) (#4.3.5)\n", kName, kName);
        return 111;
    }
    if (domain.empty()) return temporary("no domain: HOST is not set");
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') local = local.substr(1, local.size() - 2);

    // the message must be readable at any offset: a pipe is copied into an unnamed file first
    int fd = 0;
    struct stat st {};
    if (::fstat(0, &st) != 0) return temporary(std::string("cannot read the message: ") + std::strerror(errno));
    off_t offset = 0;
    if (!S_ISREG(st.st_mode)) {
        const char* tmp = std::getenv("TMPDIR");
        fd = ::open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) return temporary(std::string("cannot make a temporary file: ") + std::strerror(errno));
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return temporary(std::string("cannot read the message: ") + std::strerror(errno));
            if (n == 0) break;
            if (::write(fd, buf, static_cast<std::size_t>(n)) != n)
                return temporary(std::string("cannot write a temporary file: ") + std::strerror(errno));
        }
        if (::fstat(fd, &st) != 0) return temporary(std::string("cannot stat a temporary file: ") + std::strerror(errno));
    } else {
        offset = ::lseek(0, 0, SEEK_CUR);
        if (offset < 0) offset = 0;
    }
    qv::LocalMessage m{fd, offset, static_cast<std::uint64_t>(st.st_size - offset), sender};
    if (m.size == 0) return finish({qv::DeliveryOutcome::success, "an empty message: discarded"});

    qv::Paths paths = qv::Paths::from_env();
    std::unique_ptr<qv::Store> store;
    auto get_store = [&]() -> qv::Store& {
        if (!store) store = qv::open_store(paths);
        return *store;
    };
    qv::LocalOptions o;
    o.qmail_ext = std::getenv("QMAIL_EXT") != nullptr;
#ifdef QV_VFILTER
    o.filters = true;
#endif
    o.handler = handler;
    return finish(qv::deliver_virtual(paths, get_store, local, domain, m, o));
}
