// qmailctl outgoingip - the local addresses remote deliveries leave from: control/outgoingip and
// control/outgoingip.<host>, and `pick`, which shows the choice qmail-remote makes.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>

#include "qmailctl.hpp"
#include "qvmail/error.hpp"
#include "qvmail/outgoing_ip.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/service.hpp"

namespace qv::qmailctl {

namespace {

struct OutgoingArgs {
    std::optional<std::string> host;
    std::vector<std::string> ips;
    std::string pick_host;
    std::uint64_t count = 0;
};

std::optional<std::string> checked_outgoingip_host(const std::optional<std::string>& h) {
    return h ? std::optional(outgoingip_host(*h)) : std::nullopt;
}

int run_outgoingip_list(const Program& prog, const OutgoingArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto file = outgoingip_file(paths, checked_outgoingip_host(a.host));
    std::vector<std::string> problems;
    for (auto& ip : outgoingip_entries(file, &problems)) {
        bool local = is_local_address(ip);
        if (rep.json())
            rep.object(Json::object().set("ip", ip).set("file", file.string()).set("local", local));
        else
            rep.line(ip + (local ? "" : "\t(not an address of this host)"));
    }
    for (auto& p : problems) rep.warning(p);
    rep.info("file: " + file.string());
    return 0;
}

int run_outgoingip_change(const Program& prog, const OutgoingArgs& a, bool add) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto host = checked_outgoingip_host(a.host);
    auto lock = lock_for_change(paths, prog.common);
    OutgoingIpChange c = add ? outgoingip_add(paths, host, a.ips, prog.common.dry_run)
                             : outgoingip_remove(paths, host, a.ips, prog.common.dry_run);
    std::string file = outgoingip_file(paths, host).string();
    for (auto& s : c.skipped) rep.warning(s + (add ? " is listed already" : " is not listed") + " in " + file);
    if (add)
        for (auto& ip : c.changed)
            if (!is_local_address(ip))
                rep.warning(ip + " is not configured on any interface of this host: qmail-remote may fail to bind it");
    std::string list;
    for (auto& ip : c.changed) list += (list.empty() ? "" : ", ") + ip;
    std::string what = std::string(add ? "added " : "removed ") + list + (add ? " to " : " from ") + file;
    return report_change(prog, what, c.steps, Json::object().set("file", file).set("addresses", c.changed));
}

int run_outgoingip_pick(const Program& prog, const OutgoingArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::string host = outgoingip_host(a.pick_host);
    if (a.count > 1000000) throw Error(Exit::usage, "--count: at most 1000000 picks");
    std::mt19937_64 rng{std::random_device{}()};
    // qmail-remote runs with qmail-send's environment: its variables count, as this environment does
    bool from_service = false;
    if (!paths.outgoingip) {
        paths.outgoingip = read_service_variable(paths, kSendService, "OUTGOINGIP");
        from_service = paths.outgoingip.has_value();
    }
    OutgoingIpChoice c = choose_outgoing_ip(paths, host, rng);
    std::map<std::string, std::uint64_t> picks;
    for (auto& ip : c.candidates) picks[ip] = 0;
    for (std::uint64_t i = 0; i < a.count; ++i) ++picks[choose_outgoing_ip(paths, host, rng).ip];
    std::string where =
        c.source == OutgoingIpChoice::environment
            ? std::string(from_service ? "OUTGOINGIP of qmail-send (" +
                                             service_variable_file(paths, kSendService, "OUTGOINGIP").string() + ")"
                                       : "the OUTGOINGIP variable")
        : c.source == OutgoingIpChoice::none ? "no outgoingip file with an address: the kernel chooses"
                                             : c.file.string() + " (" + to_string(c.source) + ")";
    if (rep.json()) {
        Json j = Json::object();
        j.set("host", host).set("source", to_string(c.source));
        j.set("file", c.file.empty() ? Json() : Json(c.file.string()));
        j.set("candidates", c.candidates).set("ip", c.ip.empty() ? Json() : Json(c.ip));
        if (a.count) {
            Json counts = Json::object();
            for (auto& [ip, n] : picks) counts.set(ip.empty() ? "(kernel)" : ip, n);
            j.set("count", a.count).set("picks", std::move(counts));
        }
        rep.object(j);
        return 0;
    }
    rep.line("delivery to " + host + ": " + where);
    if (c.source != OutgoingIpChoice::none)
        rep.line("addresses: " + std::to_string(c.candidates.size()) + ", chosen: " + c.ip);
    if (a.count) {
        rep.line(std::to_string(a.count) + " picks (uniform: " +
                 std::to_string(100.0 / static_cast<double>(std::max<std::size_t>(picks.size(), 1))).substr(0, 5) +
                 "% each):");
        for (auto& [ip, n] : picks) {
            char pct[32];
            std::snprintf(pct, sizeof pct, "%.2f%%", 100.0 * static_cast<double>(n) / static_cast<double>(a.count));
            rep.line("  " + (ip.empty() ? std::string("(kernel)") : ip) + "\t" + std::to_string(n) + "\t" + pct);
        }
    }
    return 0;
}

}  // namespace

void setup_outgoingip(CLI::App& app, Program& prog) {
    static OutgoingArgs args;
    CLI::App* o = app.add_subcommand(
        "outgoingip", "The local addresses remote deliveries leave from: control/outgoingip and outgoingip.<host>");
    o->require_subcommand(1);
    const unsigned change = opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait;
    auto host_option = [](CLI::App* s) {
        s->add_option("--host", args.host, "The file of this destination host (control/outgoingip.<host>)")
            ->type_name("HOST");
    };

    CLI::App* ls = o->add_subcommand("list", "Show the addresses of the file");
    host_option(ls);
    add_common_options(*ls, prog.common, opt_json | opt_verbose | opt_quiet);
    ls->callback([&prog] { prog.action = [&prog] { return run_outgoingip_list(prog, args); }; });

    for (bool add : {true, false}) {
        CLI::App* s = o->add_subcommand(add ? "add" : "remove", add ? "Add addresses to the file (IPv4 or IPv6)"
                                                                    : "Remove addresses from the file");
        host_option(s);
        s->add_option("IP", args.ips, "The addresses")->required();
        add_common_options(*s, prog.common, change);
        s->callback([&prog, add] { prog.action = [&prog, add] { return run_outgoingip_change(prog, args, add); }; });
        if (!add)
            prog.positional_completions[s] = [](const std::string&) {
                Paths paths = Paths::from_env();
                return outgoingip_entries(outgoingip_file(paths, checked_outgoingip_host(args.host)));
            };
    }

    CLI::App* p =
        o->add_subcommand("pick", "Show which file applies to HOST and the address qmail-remote would choose");
    p->add_option("HOST", args.pick_host, "The destination host (as qmail-remote gets it)")->required();
    p->add_option("--count", args.count, "Pick N times and show how the picks spread")->type_name("N");
    add_common_options(*p, prog.common, opt_json);
    p->callback([&prog] { prog.action = [&prog] { return run_outgoingip_pick(prog, args); }; });

    set_footers(o,
                "Exit status: 0 done; 6 not listed; 9 listed already; 64 usage; 65 bad address or host; 73/74/77\n"
                "the file cannot be written; 75 locked. See qmailctl(8).");
}

}  // namespace qv::qmailctl
