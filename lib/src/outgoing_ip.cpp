#include "qvmail/outgoing_ip.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

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

namespace {

// The address of a control file entry (blanks before it allowed), canonical. Throws Error 65.
std::string entry_address(std::string_view entry) {
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    return canonical_ip(entry);
}

}  // namespace

std::vector<std::string> outgoingip_entries(const fs::path& file, std::vector<std::string>* problems) {
    std::vector<std::string> out;
    if (!path_exists(file)) return out;
    LineReader in(file);
    std::string_view line;
    while (in.next(line)) {
        std::string_view e = control_entry(line);
        if (e.find_first_not_of(" \t") == std::string_view::npos) continue;
        try {
            out.push_back(entry_address(e));
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
        try {
            if (entry_address(e) == ip) out.push_back(e);
        } catch (const Error&) {
        }
    }
    return out;
}

// The addresses given, checked all before anything changes, canonical, each once.
std::vector<std::string> canonical_list(const std::vector<std::string>& ips) {
    std::vector<std::string> out;
    for (auto& ip : ips)
        if (std::string c = canonical_ip(ip); std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    return out;
}

}  // namespace

OutgoingIpChange outgoingip_add(const Paths& paths, const std::optional<std::string>& host,
                                const std::vector<std::string>& ips, bool dry_run) {
    std::vector<std::string> canonical = canonical_list(ips);
    ControlFile f = ControlFile::load(outgoingip_file(paths, host));
    OutgoingIpChange c;
    for (auto& ip : canonical) {
        if (!lines_for(f, ip).empty()) {
            c.skipped.push_back(ip);
            continue;
        }
        f.add(ip);
        c.changed.push_back(ip);
    }
    if (c.changed.empty())
        throw Error(Exit::exists,
                    f.path().string() + " lists " + (canonical.size() == 1 ? canonical[0] : "them") + " already");
    c.steps = change_file(f.path(), f.text().empty() ? std::nullopt : std::optional(f.text()), 0644, dry_run);
    return c;
}

OutgoingIpChange outgoingip_remove(const Paths& paths, const std::optional<std::string>& host,
                                   const std::vector<std::string>& ips, bool dry_run) {
    std::vector<std::string> canonical = canonical_list(ips);
    ControlFile f = ControlFile::load(outgoingip_file(paths, host));
    OutgoingIpChange c;
    for (auto& ip : canonical) {
        auto lines = lines_for(f, ip);
        (lines.empty() ? c.skipped : c.changed).push_back(ip);
        for (auto& l : lines) f.remove(l);
    }
    if (c.changed.empty())
        throw Error(Exit::missing,
                    f.path().string() + " does not list " + (canonical.size() == 1 ? canonical[0] : "any of them"));
    c.steps = change_file(f.path(), f.text().empty() ? std::nullopt : std::optional(f.text()), 0644, dry_run);
    return c;
}

}  // namespace qv
