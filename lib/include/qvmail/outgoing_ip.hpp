// The local address qmail-remote binds for a remote delivery (IndiMail's outgoingip), so that a large
// sender spreads its mail over several source addresses, or uses other ones for a provider that limits
// connections per address. Precedence, first that gives an address:
//   1. the environment variable OUTGOINGIP;
//   2. control/outgoingip.<host>, host being the destination qmail-remote delivers to (lower-cased);
//   3. control/outgoingip;
//   4. none: the kernel chooses.
// A file gives one of its addresses, uniformly at random: its lines that are not comments ('#') nor
// blank. A file that is missing, or has no address, falls through to the next level. (IndiMail picks
// time() % count over a count that includes comment lines, and then defers the delivery when it lands on
// one; qvmail never does.) Lines that are not IPv4 or IPv6 addresses are never picked; qmailctl check
// reports them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

struct Paths;

// A destination host as the file name takes it: lower-cased letters, digits, '.', '-', '_', or an
// address literal in brackets. Throws Error 65.
std::string outgoingip_host(std::string_view host);
// control/outgoingip, or control/outgoingip.<host>.
std::filesystem::path outgoingip_file(const Paths& paths, const std::optional<std::string>& host);

// The addresses of a file, in order (canonical form). Other lines are skipped and, with `problems`,
// reported as "file:line: why". A missing file has none.
std::vector<std::string> outgoingip_entries(const std::filesystem::path& file,
                                            std::vector<std::string>* problems = nullptr);

struct OutgoingIpChoice {
    enum Source { environment, host_file, global_file, none } source = none;
    std::filesystem::path file;           // with host_file and global_file
    std::vector<std::string> candidates;  // the file's addresses (the variable's value with environment)
    std::string ip;                       // empty with none
};
const char* to_string(OutgoingIpChoice::Source s) noexcept;  // "OUTGOINGIP", "host file", ...

// The address for a delivery to `host` (already checked with outgoingip_host), drawn with `rng`.
OutgoingIpChoice choose_outgoing_ip(const Paths& paths, std::string_view host, std::mt19937_64& rng);
// The same, with a generator seeded from std::random_device once per thread.
OutgoingIpChoice choose_outgoing_ip(const Paths& paths, std::string_view host);

// Whether `ip` is an address of one of this host's interfaces (getifaddrs).
bool is_local_address(const std::string& ip);

// qmailctl outgoingip add/remove: the caller holds the admin lock. Addresses are checked and written in
// canonical form (an address given twice counts once). add throws Error 9 when every address is there
// already; remove throws Error 6 when none is. A file left without any line goes.
struct OutgoingIpChange {
    std::vector<std::string> changed;  // added or removed, in the order given
    std::vector<std::string> skipped;  // listed already (add), or not listed (remove)
    std::vector<std::string> steps;
};
OutgoingIpChange outgoingip_add(const Paths& paths, const std::optional<std::string>& host,
                                const std::vector<std::string>& ips, bool dry_run);
OutgoingIpChange outgoingip_remove(const Paths& paths, const std::optional<std::string>& host,
                                   const std::vector<std::string>& ips, bool dry_run);

}  // namespace qv
