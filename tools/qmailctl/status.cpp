// qmailctl status - the mail host at a glance: services, queue, recent deliveries, relay grants, the
// store; exit 1 when something needs attention. --prometheus for node_exporter's textfile collector.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "qmailctl.hpp"
#include "qvmail/host_status.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"

namespace qv::qmailctl {

namespace {

struct StatusArgs {
    std::optional<std::string> log;
    long long warn_age = 3600;
    unsigned long long warn_queue = 10000;
    bool prometheus = false;
};

Json status_json(const HostStatus& s) {
    Json services = Json::array();
    for (const auto& v : s.services) {
        Json j = Json::object();
        j.set("name", v.name).set("running", v.known ? Json(v.running) : Json()).set("expected", v.expected);
        j.set("pid", v.pid ? Json(static_cast<std::int64_t>(*v.pid)) : Json());
        j.set("since", v.since ? Json(static_cast<std::int64_t>(*v.since)) : Json()).set("source", v.how);
        services.push(std::move(j));
    }
    Json domains = Json::array();
    for (const auto& d : s.queue.by_domain)
        domains.push(Json::object()
                         .set("domain", d.domain)
                         .set("recipients", d.recipients)
                         .set("oldest_age", static_cast<std::int64_t>(s.now - d.oldest)));
    Json queue = Json::object();
    queue.set("messages", s.queue.messages).set("unprocessed", s.queue.todo).set("incomplete", s.queue.incomplete);
    queue.set("bytes", s.queue.bytes);
    queue.set("oldest_age", s.queue.oldest ? Json(static_cast<std::int64_t>(s.now - s.queue.oldest)) : Json());
    queue.set("recipients_waiting", s.queue.waiting).set("waiting_by_domain", std::move(domains));
    queue.set("bounces_waiting", s.queue.bounces);
    Json minutes = Json::array();
    for (const auto& m : s.deliveries.minutes)
        minutes.push(Json::object()
                         .set("minute", static_cast<std::int64_t>(m.minute))
                         .set("delivered", m.delivered)
                         .set("deferred", m.deferred)
                         .set("bounced", m.bounced));
    Json del = Json::object();
    del.set("source", s.deliveries.source.empty() ? Json() : Json(s.deliveries.source));
    del.set("problem", s.deliveries.problem.empty() ? Json() : Json(s.deliveries.problem));
    del.set("delivered", s.deliveries.delivered).set("deferred", s.deliveries.deferred).set("bounced", s.deliveries.bounced);
    del.set("per_minute", std::move(minutes));
    Json store = Json::object();
    store.set("backend", s.store.backend).set("up", s.store.up);
    store.set("server", s.store.server.empty() ? Json() : Json(s.store.server));
    store.set("version", s.store.version.empty() ? Json() : Json(s.store.version));
    store.set("problem", s.store.problem.empty() ? Json() : Json(s.store.problem));
    Json attention = Json::array();
    for (const auto& a : s.attention) attention.push(a);
    Json j = Json::object();
    j.set("hostname", s.hostname).set("qmailhome", s.qmailhome.string()).set("time", static_cast<std::int64_t>(s.now));
    j.set("services", std::move(services)).set("queue", std::move(queue)).set("deliveries", std::move(del));
    j.set("relay_grants", Json::object()
                              .set("in_force", s.grants.in_force)
                              .set("oldest", s.grants.oldest ? Json(s.grants.oldest) : Json())
                              .set("source", s.grants.source));
    j.set("store", std::move(store)).set("attention", std::move(attention));
    return j;
}

void print_text(const Reporter& rep, const HostStatus& s) {
    rep.line("qvmail on " + (s.hostname.empty() ? std::string("(no control/me)") : s.hostname) + " in " +
             s.qmailhome.string() + ", " + local_time_text(s.now));
    rep.line("services:");
    for (const auto& v : s.services) {
        std::string l = "  " + v.name + std::string(v.name.size() < 20 ? 20 - v.name.size() : 1, ' ');
        if (!v.known)
            l += "-  (" + v.how + ")";
        else if (v.running)
            l += "running" + (v.since ? " since " + local_time_text(*v.since) + " (" + age_text(s.now - *v.since) + ")" : std::string()) +
                 (v.pid ? ", pid " + std::to_string(*v.pid) : std::string()) + "  [" + v.how + "]";
        else
            l += std::string(v.expected ? "NOT RUNNING" : "not running") + "  [" + v.how + "]";
        rep.line(l);
    }
    const QueueSummary& q = s.queue;
    std::string ql = "queue: " + std::to_string(q.messages) + " message" + (q.messages == 1 ? "" : "s");
    if (q.messages) ql += ", oldest " + age_text(s.now - q.oldest) + ", " + std::to_string(q.bytes) + " bytes";
    if (q.todo) ql += ", " + std::to_string(q.todo) + " not yet preprocessed";
    ql += "; " + std::to_string(q.bounces) + " bounce" + (q.bounces == 1 ? "" : "s") + " waiting";
    rep.line(ql);
    if (!q.by_domain.empty()) {
        rep.line("  waiting, by destination (recipients, oldest):");
        std::size_t shown = 0;
        for (const auto& d : q.by_domain) {
            if (++shown > 10) {
                rep.line("    ... and " + std::to_string(q.by_domain.size() - 10) + " more domains");
                break;
            }
            rep.line("    " + printable(d.domain.empty() ? "(no domain)" : d.domain) + "  " + std::to_string(d.recipients) +
                     ", " + age_text(s.now - d.oldest));
        }
    }
    const DeliverySummary& d = s.deliveries;
    if (!d.problem.empty()) {
        rep.line("deliveries, last hour: unknown (" + d.problem + ")");
    } else {
        rep.line("deliveries, last hour: " + std::to_string(d.delivered) + " delivered, " + std::to_string(d.deferred) +
                 " deferred, " + std::to_string(d.bounced) + " bounced  [" + d.source + "]");
        // the last ten minutes, one figure each: delivered/deferred/bounced
        std::string l = "  per minute, last 10 (delivered/deferred/bounced):";
        for (std::size_t i = d.minutes.size() >= 10 ? d.minutes.size() - 10 : 0; i < d.minutes.size(); ++i)
            l += " " + std::to_string(d.minutes[i].delivered) + "/" + std::to_string(d.minutes[i].deferred) + "/" +
                 std::to_string(d.minutes[i].bounced);
        rep.line(l);
    }
    rep.line("relay grants in force: " + std::to_string(s.grants.in_force) +
             (s.grants.oldest ? ", oldest " + age_text(s.now - s.grants.oldest) : std::string()) +
             (s.grants.source.empty() ? std::string() : "  [" + s.grants.source + "]"));
    std::string st = "store: " + s.store.backend;
    if (!s.store.server.empty()) st += ", " + s.store.server;
    if (!s.store.version.empty()) st += ", server " + s.store.version;
    st += s.store.up ? ", up" : ", DOWN: " + s.store.problem;
    rep.line(st);
    if (s.attention.empty()) {
        rep.line("attention: none");
    } else {
        rep.line("attention:");
        for (const auto& a : s.attention) rep.line("  - " + printable(a));
    }
}

int run_status(const Program& prog, const StatusArgs& a) {
    Reporter rep(prog.name, prog.common);
    if (a.prometheus && rep.json()) throw Error(Exit::usage, "--json and --prometheus: give one of them");
    if (a.warn_age < 0) throw Error(Exit::usage, "--warn-age: a number of seconds, 0 or more");
    StatusOptions opts;
    if (a.log) opts.send_log = *a.log;
    opts.warn_age = static_cast<std::time_t>(a.warn_age);
    opts.warn_queue = a.warn_queue;
    opts.mysql = prog.mysql;
    Progress progress(rep, "qmailctl status: messages read");
    if (!a.prometheus) opts.progress = progress.callback();
    HostStatus s = host_status(Paths::from_env(), opts);
    progress.clear();
    if (a.prometheus)
        std::cout << prometheus_text(s);
    else if (rep.json())
        rep.object(status_json(s));
    else
        print_text(rep, s);
    return s.attention.empty() ? 0 : 1;
}

}  // namespace

void setup_status(CLI::App& app, Program& prog) {
    static StatusArgs args;
    CLI::App* st = app.add_subcommand(
        "status", "The mail host at a glance: services, queue, recent deliveries, relay grants, the store; exit 1 "
                  "when something needs attention");
    st->add_option("--log", args.log,
                   "qmail-send's log file (multilog t, svlogd -tt or ISO timestamps); default: its journal")
        ->type_name("FILE");
    st->add_option("--warn-age", args.warn_age,
                   "A recipient or bounce waiting this many seconds or more needs attention (default 3600)")
        ->type_name("SECONDS");
    st->add_option("--warn-queue", args.warn_queue, "More queued messages than this need attention (default 10000)")
        ->type_name("N");
    st->add_flag("--prometheus", args.prometheus, "Write the figures in Prometheus' text format instead");
    add_common_options(*st, prog.common, opt_json);
    add_mysql_options(*st, prog);
    st->callback([&prog] { prog.action = [&prog] { return run_status(prog, args); }; });
    set_footers(st,
                "Exit status: 0 all is well; 1 something needs attention (listed); 64 usage; 66/74 the queue\n"
                "cannot be read. See qmailctl(8).");
}

}  // namespace qv::qmailctl
