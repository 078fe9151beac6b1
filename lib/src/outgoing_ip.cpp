#include "qvmail/outgoing_ip.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "qvmail/address.hpp"
#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

std::string outgoingip_host(std::string_view host) {
    std::string h = ascii_lower(host);
    auto bad = [&](const std::string& why) {
        throw Error(Exit::dataerr, "invalid host '" + printable(host) + "': " + why);
    };
    if (h.empty()) bad("it is empty");
    if (h.size() > 244) bad("longer than 244 characters (outgoingip.<host> must be a file name)");
    if (h.front() == '[') {  // an address literal: [1.2.3.4], [IPv6:...]
        if (h.back() != ']' || h.size() < 3) bad("an address literal is written [address]");
        for (char c : h.substr(1, h.size() - 2))
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == ':'))
                bad("not an address literal");
        return h;
    }
    if (h.front() == '.' || h.front() == '-') bad("it cannot start with '.' or '-'");
    for (char c : h)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '-' || c == '_'))
            bad(std::string("the character '") + printable(std::string_view(&c, 1)) +
                "' is not allowed (letters, digits, '.', '-', '_')");
    return h;
}

fs::path outgoingip_file(const Paths& paths, const std::optional<std::string>& host) {
    return host ? paths.control("outgoingip." + *host) : paths.control("outgoingip");
}

std::vector<std::string> outgoingip_entries(const fs::path& file, std::vector<std::string>* problems) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::exists(file, ec)) return out;
    LineReader in(file);
    std::string_view line;
    while (in.next(line)) {
        std::string_view e = control_entry(line);
        while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
        if (e.empty()) continue;
        try {
            out.push_back(canonical_ip(e));
        } catch (const Error& err) {
            if (problems)
                problems->push_back(file.string() + ":" + std::to_string(in.line_number()) + ": " + err.what());
        }
    }
    return out;
}

const char* to_string(OutgoingIpChoice::Source s) noexcept {
    switch (s) {
        case OutgoingIpChoice::environment:
            return "OUTGOINGIP";
        case OutgoingIpChoice::host_file:
            return "host file";
        case OutgoingIpChoice::global_file:
            return "global file";
        case OutgoingIpChoice::none:
            break;
    }
    return "none";
}

OutgoingIpChoice choose_outgoing_ip(const Paths& paths, std::string_view host, std::mt19937_64& rng) {
    OutgoingIpChoice c;
    if (paths.outgoingip) {
        c.source = OutgoingIpChoice::environment;
        c.ip = *paths.outgoingip;
        c.candidates = {c.ip};
        return c;
    }
    for (auto source : {OutgoingIpChoice::host_file, OutgoingIpChoice::global_file}) {
        fs::path file = outgoingip_file(
            paths, source == OutgoingIpChoice::host_file ? std::optional<std::string>(host) : std::nullopt);
        auto entries = outgoingip_entries(file);
        if (entries.empty()) continue;  // missing or without an address: the next level
        c.source = source;
        c.file = file;
        c.ip = entries[std::uniform_int_distribution<std::size_t>(0, entries.size() - 1)(rng)];
        c.candidates = std::move(entries);
        return c;
    }
    return c;
}

OutgoingIpChoice choose_outgoing_ip(const Paths& paths, std::string_view host) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return choose_outgoing_ip(paths, host, rng);
}

bool is_local_address(const std::string& ip) {
    struct ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return false;
    bool found = false;
    for (struct ifaddrs* i = list; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        char buf[INET6_ADDRSTRLEN];
        const void* a = nullptr;
        if (i->ifa_addr->sa_family == AF_INET)
            a = &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr;
        else if (i->ifa_addr->sa_family == AF_INET6)
            a = &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr;
        if (a && ::inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof buf)) found = canonical_ip(buf) == ip;
    }
    ::freeifaddrs(list);
    return found;
}

namespace {

// The entries of `f` whose address is `ip` (spelt however the file spells it).
std::vector<std::string> lines_for(const ControlFile& f, const std::string& ip) {
    std::vector<std::string> out;
    for (auto& e : f.entries()) {
        std::string_view t = e;
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
        try {
            if (canonical_ip(t) == ip) out.push_back(e);
        } catch (const Error&) {
        }
    }
    return out;
}

std::vector<std::string> publish(ControlFile& f, bool dry_run) {
    FileTransaction tx(dry_run);
    if (f.text().empty())
        tx.remove(f.path());
    else {
        tx.make_dir(f.path().parent_path(), 0755);
        tx.write(f.path(), f.text(), 0644);
    }
    if (!dry_run) tx.commit();
    return tx.log();
}

}  // namespace

std::vector<std::string> outgoingip_add(const Paths& paths, const std::optional<std::string>& host,
                                        const std::vector<std::string>& ips, bool dry_run,
                                        std::vector<std::string>* skipped) {
    std::vector<std::string> canonical;
    for (auto& ip : ips) canonical.push_back(canonical_ip(ip));  // all checked before anything changes
    ControlFile f = ControlFile::load(outgoingip_file(paths, host));
    std::size_t added = 0;
    for (auto& ip : canonical) {
        if (!lines_for(f, ip).empty()) {
            if (skipped) skipped->push_back(ip);
            continue;
        }
        added += f.add(ip);
    }
    if (!added)
        throw Error(Exit::exists,
                    f.path().string() + " lists " + (canonical.size() == 1 ? canonical[0] : "them") + " already");
    return publish(f, dry_run);
}

std::vector<std::string> outgoingip_remove(const Paths& paths, const std::optional<std::string>& host,
                                           const std::vector<std::string>& ips, bool dry_run,
                                           std::vector<std::string>* skipped) {
    std::vector<std::string> canonical;
    for (auto& ip : ips) canonical.push_back(canonical_ip(ip));
    ControlFile f = ControlFile::load(outgoingip_file(paths, host));
    std::size_t removed = 0;
    for (auto& ip : canonical) {
        auto lines = lines_for(f, ip);
        if (lines.empty() && skipped) skipped->push_back(ip);
        for (auto& l : lines) removed += f.remove(l);
    }
    if (!removed)
        throw Error(Exit::missing,
                    f.path().string() + " does not list " + (canonical.size() == 1 ? canonical[0] : "any of them"));
    return publish(f, dry_run);
}

}  // namespace qv
