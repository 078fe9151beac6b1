// qmailctl relay - who may relay: tcp.smtp rules, relayclients, relaydomains, relaymailfrom, the
// POP/IMAP-before-SMTP grants, and `test`, which explains the decision the MTA takes.
#include <CLI/CLI.hpp>

#include <ctime>
#include <functional>

#include "qmailctl.hpp"
#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/store.hpp"
#include "qvmail/tcprules.hpp"

namespace qv::qmailctl {

namespace {

struct RelayArgs {
    std::string address;  // rules: ADDR; lists: ENTRY; grant: EMAIL
    std::string ip;
    std::vector<std::string> env;
    std::optional<std::string> email;
    bool all = false;
    RelayQuery query;
};

std::vector<std::pair<std::string, std::string>> parse_env(const std::vector<std::string>& items) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& i : items) {
        std::size_t eq = i.find('=');
        if (eq == std::string::npos)
            throw Error(Exit::usage, "--env " + i + ": expected VAR=VALUE (VAR= for an empty value)");
        out.emplace_back(i.substr(0, eq), i.substr(eq + 1));
    }
    return out;
}

int run_rules_list(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    for (auto& r : list_tcp_rules(paths)) {
        if (rep.json()) {
            Json env = Json::object();
            for (auto& [n, v] : r.env) env.set(n, v);
            rep.object(Json::object()
                           .set("line", r.line)
                           .set("address", r.address)
                           .set("action", r.deny ? "deny" : "allow")
                           .set("env", std::move(env))
                           .set("text", r.text));
        } else {
            rep.line(std::to_string(r.line) + "\t" + r.text);
        }
    }
    return 0;
}

int run_rules_add(const Program& prog, const RelayArgs& a, bool deny) {
    Paths paths = Paths::from_env();
    auto env = parse_env(a.env);
    if (deny && !env.empty()) throw Error(Exit::usage, "--env makes no sense with deny: tcpserver sets nothing");
    auto lock = lock_for_change(paths, prog.common);
    auto steps = add_tcp_rule(paths, a.address, deny, env, prog.common.dry_run);
    std::string line = format_rule(tcprules_address(a.address), deny, env);
    return report_change(prog, "added rule " + line + " to " + paths.tcp_file.string(), steps,
                         Json::object().set("rule", line).set("file", paths.tcp_file.string()));
}

int run_rules_remove(const Program& prog, const RelayArgs& a) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto steps = remove_tcp_rule(paths, a.address, prog.common.dry_run);
    std::string addr = tcprules_address(a.address);
    return report_change(prog, "removed the rule for " + addr + " from " + paths.tcp_file.string(), steps,
                         Json::object().set("address", addr).set("file", paths.tcp_file.string()));
}

int run_list_show(const Program& prog, RelayList l) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    for (auto& e : relay_list_entries(paths, l)) {
        if (rep.json())
            rep.object(Json::object().set("entry", e).set("file", relay_list_file(paths, l).string()));
        else
            rep.line(e);
    }
    return 0;
}

int run_list_change(const Program& prog, RelayList l, const RelayArgs& a, bool add) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    std::string entry = relay_list_entry(l, a.address);
    auto steps = add ? relay_list_add(paths, l, a.address, prog.common.dry_run)
                     : relay_list_remove(paths, l, a.address, prog.common.dry_run);
    std::string file = relay_list_file(paths, l).string();
    return report_change(prog, (add ? "added " + entry + " to " : "removed " + a.address + " from ") + file, steps,
                         Json::object().set("entry", entry).set("file", file));
}

int run_grant(const Program& prog, const RelayArgs& a) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    auto steps = grant_relay(paths, *store, a.address, a.ip, std::time(nullptr), prog.common.dry_run);
    return report_change(prog, "granted relaying to " + a.address + " from " + a.ip, steps,
                         Json::object().set("email", a.address).set("ip", a.ip).set("store", store->grants_source()));
}

int run_revoke(const Program& prog, const RelayArgs& a) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    std::vector<std::string> steps;
    std::uint64_t n = revoke_relay(paths, *store, a.ip, a.email, prog.common.dry_run, steps);
    if (n == 0)
        throw Error(Exit::missing, "no relay grant for " + a.ip + (a.email ? " and " + *a.email : "") + " in " +
                                       store->grants_source());
    return report_change(prog, "revoked " + std::to_string(n) + " relay grant(s) for " + a.ip, steps,
                         Json::object().set("ip", a.ip).set("revoked", n));
}

int run_grants(const Program& prog, const RelayArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto store = open_store(paths, prog.mysql);
    std::int64_t now = std::time(nullptr);
    std::int64_t window = static_cast<std::int64_t>(paths.relay_clear_minutes) * 60;
    std::size_t expired_hidden = 0;
    for (auto& g : store->list_grants()) {
        bool expired = now - g.timestamp >= window;  // as the lookup and clearopensmtp see it
        if (expired && !a.all) {
            ++expired_hidden;
            continue;
        }
        if (rep.json()) {
            rep.object(Json::object()
                           .set("email", g.email)
                           .set("ip", g.ip)
                           .set("timestamp", g.timestamp)
                           .set("age_seconds", now - g.timestamp)
                           .set("expired", expired));
        } else {
            rep.line(g.ip + "\t" + (g.email.empty() ? "-" : g.email) + "\t" + age_text(now - g.timestamp) +
                     (expired ? "\texpired" : ""));
        }
    }
    if (!rep.json() && expired_hidden)
        rep.info(std::to_string(expired_hidden) + " expired grant(s) not shown (--all shows them)");
    return 0;
}

int run_test(const Program& prog, RelayArgs a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    a.query.ip = grant_ip(a.ip);
    std::unique_ptr<Store> store = open_store(paths, prog.mysql);
    RelayDecision d = decide_relay(paths, store.get(), a.query, std::time(nullptr));
    std::string where = d.source;
    if (d.line) where += ":" + std::to_string(*d.line);
    if (rep.json()) {
        Json j = Json::object();
        j.set("ip", a.query.ip)
            .set("verdict", d.verdict_name())
            .set("allowed", d.accepted())
            .set("mechanism", d.mechanism.empty() ? Json() : Json(d.mechanism))
            .set("source", d.source.empty() ? Json() : Json(d.source))
            .set("line", d.line ? Json(*d.line) : Json())
            .set("text", d.text)
            .set("append", d.append)
            .set("trace", d.trace);
        rep.object(j);
    } else {
        std::string head;
        switch (d.verdict) {
            case RelayDecision::relay:
                head = a.query.ip + " may relay (" + d.mechanism + ")";
                break;
            case RelayDecision::local:
                head = "accepted without relaying: the recipient is local";
                break;
            case RelayDecision::refused:
                head = a.query.ip + " may not relay";
                break;
            case RelayDecision::rejected:
                head = "rejected: a relay probe (550 we don't relay)";
                break;
            case RelayDecision::denied:
                head = a.query.ip + " may not connect: tcp.smtp denies it";
                break;
        }
        rep.line(head);
        if (!where.empty()) rep.line("  by " + where + (d.text.empty() ? "" : ": " + printable(d.text)));
        if (!d.append.empty()) rep.line("  RELAYCLIENT=" + d.append + " (appended to every recipient)");
        for (auto& t : d.trace) rep.line("  - " + t);
    }
    return d.accepted() ? 0 : 1;
}

}  // namespace

void setup_relay(CLI::App& app, Program& prog) {
    static RelayArgs args;
    CLI::App* relay = app.add_subcommand(
        "relay",
        "Who may relay: tcp.smtp rules, relayclients, relaydomains, relaymailfrom, relay grants; test a client");
    relay->require_subcommand(1);
    const unsigned change = opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait;

    CLI::App* rules = relay->add_subcommand("rules", "The tcp.smtp rules; every change rebuilds tcp.smtp.cdb");
    rules->require_subcommand(1);
    CLI::App* rl = rules->add_subcommand("list", "Show the rules with their line numbers");
    add_common_options(*rl, prog.common, opt_json);
    rl->callback([&prog] { prog.action = [&prog] { return run_rules_list(prog); }; });
    for (const char* verb : {"allow", "deny"}) {
        bool deny = std::string_view(verb) == "deny";
        CLI::App* s = rules->add_subcommand(
            verb, deny ? "Add a rule that refuses connections from ADDR"
                       : "Add a rule that accepts ADDR, setting variables (RELAYCLIENT= lets it relay)");
        s->add_option("ADDR", args.address, "1.2.3.4, a prefix 10.1.1., a range 10.1.1.1-50, =host, =.domain, user@ip")
            ->required();
        if (!deny)
            s->add_option("-e,--env", args.env, "VAR=VALUE to set for the client (repeatable; RELAYCLIENT= to relay)")
                ->expected(1)
                ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        add_common_options(*s, prog.common, change);
        s->callback([&prog, deny] { prog.action = [&prog, deny] { return run_rules_add(prog, args, deny); }; });
    }
    CLI::App* rr = rules->add_subcommand("remove", "Remove the rules for ADDR");
    rr->add_option("ADDR", args.address, "The address part of the rule, as rules list shows it")->required();
    add_common_options(*rr, prog.common, change);
    rr->callback([&prog] { prog.action = [&prog] { return run_rules_remove(prog, args); }; });
    // (the completion engine keeps the candidates that start with the word typed, and drops errors)
    prog.positional_completions[rr] = [](const std::string&) {
        std::vector<std::string> out;
        for (auto& r : list_tcp_rules(Paths::from_env())) out.push_back(r.address);
        return out;
    };

    struct ListKind {
        const char* name;
        RelayList list;
        const char* help;
        const char* entry_help;
    };
    for (auto k :
         {ListKind{"clients", RelayList::clients, "control/relayclients: client IPs and prefixes that may relay",
                   "IP or prefix ending in '.', optionally :TEXT to append to recipients"},
          ListKind{"domains", RelayList::domains, "control/relaydomains: client host names that may relay",
                   "host name or .suffix, optionally :TEXT to append to recipients"},
          ListKind{"mailfrom", RelayList::mailfrom,
                   "control/relaymailfrom (and its cdb): envelope senders that may relay", "user@domain or @domain"}}) {
        CLI::App* s = relay->add_subcommand(k.name, k.help);
        s->require_subcommand(1);
        RelayList l = k.list;
        CLI::App* ls = s->add_subcommand("list", "Show the entries");
        add_common_options(*ls, prog.common, opt_json);
        ls->callback([&prog, l] { prog.action = [&prog, l] { return run_list_show(prog, l); }; });
        for (bool add : {true, false}) {
            CLI::App* c = s->add_subcommand(add ? "add" : "remove", add ? "Add an entry" : "Remove an entry");
            c->add_option("ENTRY", args.address, k.entry_help)->required();
            add_common_options(*c, prog.common, change);
            c->callback(
                [&prog, l, add] { prog.action = [&prog, l, add] { return run_list_change(prog, l, args, add); }; });
            if (!add)
                prog.positional_completions[c] = [l](const std::string&) {
                    return relay_list_entries(Paths::from_env(), l);
                };
        }
    }

    CLI::App* g =
        relay->add_subcommand("grant", "Let EMAIL relay from IP for RELAY_CLEAR_MINUTES (POP/IMAP-before-SMTP)");
    g->add_option("EMAIL", args.address, "The mailbox that logged in")->required();
    g->add_option("IP", args.ip, "The client's IPv4 or IPv6 address")->required();
    add_common_options(*g, prog.common, change);
    add_mysql_options(*g, prog);
    g->callback([&prog] { prog.action = [&prog] { return run_grant(prog, args); }; });
    prog.positional_completions[g] = complete_addresses;

    CLI::App* rv = relay->add_subcommand("revoke", "Remove the relay grants for IP (only EMAIL's with --email)");
    rv->add_option("IP", args.ip, "The client's address")->required();
    rv->add_option("--email", args.email, "Only the grant of this mailbox");
    add_common_options(*rv, prog.common, change);
    add_mysql_options(*rv, prog);
    rv->callback([&prog] { prog.action = [&prog] { return run_revoke(prog, args); }; });

    CLI::App* gs = relay->add_subcommand("grants", "Show the current relay grants with their age");
    gs->add_flag("-a,--all", args.all, "Show expired grants too, marked");
    add_common_options(*gs, prog.common, opt_json | opt_verbose);
    add_mysql_options(*gs, prog);
    gs->callback([&prog] { prog.action = [&prog] { return run_grants(prog, args); }; });

    CLI::App* t = relay->add_subcommand(
        "test", "Explain whether a client may relay, as the MTA decides it (exit 0 allowed, 1 refused)");
    t->add_option("IP", args.ip, "The client's address (TCPREMOTEIP)")->required();
    t->add_option("--host", args.query.host, "The client's host name (TCPREMOTEHOST)");
    t->add_option("--info", args.query.info, "The client's ident answer (TCPREMOTEINFO)");
    t->add_option("--sender", args.query.sender, "The envelope sender (MAIL FROM)");
    t->add_option("--rcpt", args.query.recipient, "A recipient (RCPT TO); without it, one outside our domains");
    t->add_option("--auth", args.query.auth_user, "The user a successful SMTP AUTH named");
    add_common_options(*t, prog.common, opt_json);
    add_mysql_options(*t, prog);
    t->callback([&prog] { prog.action = [&prog] { return run_test(prog, args); }; });

    // every relay subcommand shows the exit codes that apply to relay (not qmailctl's general ones)
    set_footers(relay,
                "Exit status: 0 done (test: may relay, or the recipient is local); 1 test: refused; 6 nothing to\n"
                "remove; 9 already listed; 64 usage; 65 bad address or entry; 69 the database is down; 75 locked;\n"
                "77 grant: tcp.smtp denies the client. See qmailctl(8).");
}

}  // namespace qv::qmailctl
