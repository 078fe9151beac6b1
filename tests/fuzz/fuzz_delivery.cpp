// Fuzz target: what delivery parses from files an administrator or a client writes: control/smtproutes
// (the whole input as the file, then looked up), IndiMail quota strings, a bounce report written into
// bounce/N and split again for BOUNCEPROCESSOR, and qmail-remote's report folded as qmail-rspawn does.
// Properties: nothing throws or crashes; a route found has a port; a parsed quota survives its
// maildirsize form; a paragraph written for a recipient splits back into that recipient.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "qvmail/bounce.hpp"
#include "qvmail/maildir.hpp"
#include "qvmail/remote.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // smtproutes: parse, then look up a few hosts and the input's first line as a host
    std::vector<std::string> problems;
    qv::SmtpRoutes routes = qv::SmtpRoutes::parse(text, &problems);
    std::string_view first = text.substr(0, text.find('\n'));
    for (std::string_view host : {std::string_view("example.com"), std::string_view("a.b.example.com"), first})
        for (std::string_view sender : {std::string_view(""), std::string_view("joe@example.com")})
            if (auto r = routes.lookup(host, sender); r && r->port == 0) std::abort();
    // a quota string, and its maildirsize form read back
    if (auto q = qv::try_parse_quota(first)) {
        auto again = qv::try_parse_quota(qv::format_maildirsize_quota(*q));
        if (!again || qv::quota_unlimited(*again) != qv::quota_unlimited(*q)) std::abort();
    }
    // a bounce paragraph: the recipient comes back (without line ends, which become '_')
    std::string rcpt(first.substr(0, first.find(':')));
    for (char& c : rcpt)
        if (c == '\n' || c == '<' || c == '>') c = '_';
    auto [who, report] = qv::split_bounce_file(qv::bounce_paragraph(rcpt, text));
    if (who != rcpt) std::abort();
    // qmail-remote's output, with a few wait statuses
    for (int status : {0, 111 << 8, 100 << 8, 9}) {
        qv::SpawnResult r = qv::fold_remote_output(text, status);
        if (r.code != 'K' && r.code != 'Z' && r.code != 'D') std::abort();
    }
    return 0;
}
