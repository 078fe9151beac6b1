// qmailctl queue - the mail queue: init lays it out (notqmail's directories, modes and owners), stat
// counts what it holds, list shows each message (sender, recipients, size, age), flush makes qmail-send
// retry deferred mail now.
#include <CLI/CLI.hpp>

#include <signal.h>

#include <cerrno>
#include <ctime>

#include "qmailctl.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"

namespace qv::qmailctl {

namespace {

int run_queue_init(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    QueueDirs dirs(paths.queuedir);
    auto lock = lock_for_change(paths, prog.common);
    QueueOwners owners = queue_owners();
    for (auto& m : owners.missing)
        rep.warning("no " + m + " on this host: the caller's own id takes its place");
    auto steps = init_queue(dirs, owners, prog.common.dry_run);
    if (steps.empty()) {
        if (rep.json())
            rep.object(Json::object().set("status", "unchanged").set("queue", dirs.root().string()));
        else if (!prog.common.quiet)
            rep.line("the queue at " + dirs.root().string() + " is complete: nothing to do");
        return 0;
    }
    return report_change(prog, "laid out the queue at " + dirs.root().string() + " (" +
                                    std::to_string(steps.size()) + " steps)",
                         steps, Json::object().set("queue", dirs.root().string()));
}

int run_queue_stat(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    QueueDirs dirs(paths.queuedir);
    Progress progress(rep, "qmailctl queue stat: messages read");
    auto messages = scan_queue(dirs, progress.callback());
    progress.clear();
    std::uint64_t todo = 0, pre = 0, incomplete = 0, bytes = 0, waiting = 0, local = 0, remote = 0;
    std::time_t now = std::time(nullptr), oldest = 0;
    for (auto& m : messages) {
        if (m.state == QueuedMessage::incomplete) {
            ++incomplete;
            continue;
        }
        (m.state == QueuedMessage::todo ? todo : pre)++;
        bytes += m.size;
        if (!oldest || m.time < oldest) oldest = m.time;
        for (auto& r : m.recipients) {
            if (r.done) continue;
            ++waiting;
            if (m.state == QueuedMessage::preprocessed) (r.remote ? remote : local)++;
        }
    }
    std::uint64_t queued = todo + pre;
    if (rep.json()) {
        Json j = Json::object();
        j.set("queue", dirs.root().string()).set("messages", queued).set("todo", todo).set("preprocessed", pre);
        j.set("incomplete", incomplete).set("bytes", bytes).set("recipients", waiting);
        j.set("local", local).set("remote", remote);
        j.set("oldest_age", queued ? Json(static_cast<std::int64_t>(now - oldest)) : Json());
        rep.object(j);
        return 0;
    }
    // qmail-qstat's two lines first, then what it does not say
    rep.line("messages in queue: " + std::to_string(queued));
    rep.line("messages in queue but not yet preprocessed: " + std::to_string(todo));
    rep.line("recipients waiting: " + std::to_string(waiting) +
             (pre ? " (local " + std::to_string(local) + ", remote " + std::to_string(remote) + " of the preprocessed)"
                  : ""));
    rep.line("bytes: " + std::to_string(bytes));
    if (queued) rep.line("oldest: " + age_text(now - oldest));
    if (incomplete)
        rep.line("incomplete: " + std::to_string(incomplete) +
                 " (being written now, or left by a writer that died: never acknowledged, removed after 36 hours)");
    return 0;
}

int run_queue_list(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    QueueDirs dirs(paths.queuedir);
    std::time_t now = std::time(nullptr);
    Progress progress(rep, "qmailctl queue list: messages read");
    auto messages = scan_queue(dirs, progress.callback());
    progress.clear();
    for (auto& m : messages) {
        if (rep.json()) {
            Json rs = Json::array();
            for (auto& r : m.recipients) {
                Json o = Json::object();
                o.set("address", r.address).set("done", r.done);
                if (m.state == QueuedMessage::preprocessed) o.set("channel", r.remote ? "remote" : "local");
                rs.push(std::move(o));
            }
            Json j = Json::object();
            j.set("number", m.number).set("state", state_name(m.state)).set("time", static_cast<std::int64_t>(m.time));
            j.set("age", static_cast<std::int64_t>(now - m.time)).set("size", m.size).set("sender", m.sender);
            j.set("recipients", std::move(rs));
            rep.object(j);
            continue;
        }
        // as qmail-qread: the message's line, then one line per recipient (addresses are anyone's
        // bytes: escaped, never a control character on the terminal)
        std::string head = rfc822_date(m.time) + "  #" + std::to_string(m.number) + "  " + std::to_string(m.size) +
                           "  <" + printable(m.sender) + ">  " + age_text(now - m.time);
        if (m.state != QueuedMessage::preprocessed) head += "  (" + std::string(state_name(m.state)) + ")";
        rep.line(head);
        for (auto& r : m.recipients) {
            std::string where = m.state == QueuedMessage::preprocessed ? (r.remote ? "remote " : "local  ") : "";
            rep.line("\t" + (r.done ? std::string("done   ") : where) + printable(r.address));
        }
    }
    return 0;
}

// Tells the running qmail-send to try every deferred delivery now (as qmail's svc -a qmail-send).
int run_queue_flush(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    QueueDirs dirs(paths.queuedir);
    auto pid = running_qmail_send(dirs);
    if (!pid) throw Error(Exit::unavailable, "no qmail-send is running on " + dirs.root().string());
    if (::kill(*pid, SIGALRM) != 0)
        throw sys_error(errno == EPERM ? Exit::noperm : Exit::unavailable, "cannot signal qmail-send (pid " + std::to_string(*pid) + ") of",
                        dirs.root(), errno);
    if (rep.json())
        rep.object(Json::object().set("status", "flushed").set("pid", static_cast<std::int64_t>(*pid)));
    else if (!prog.common.quiet)
        rep.line("asked qmail-send (pid " + std::to_string(*pid) + ") to retry every deferred delivery now");
    return 0;
}

}  // namespace

void setup_queue(CLI::App& app, Program& prog) {
    CLI::App* q = app.add_subcommand("queue", "The mail queue (QUEUEDIR): lay it out, count and list what it holds");
    q->require_subcommand(1);

    CLI::App* init = q->add_subcommand(
        "init", "Create the queue's directories, FIFO and lock files with notqmail's modes and owners (idempotent)");
    add_common_options(*init, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    init->callback([&prog] { prog.action = [&prog] { return run_queue_init(prog); }; });

    CLI::App* stat = q->add_subcommand("stat", "Count the queued messages, their recipients and bytes (as qmail-qstat)");
    add_common_options(*stat, prog.common, opt_json);
    stat->callback([&prog] { prog.action = [&prog] { return run_queue_stat(prog); }; });

    CLI::App* list = q->add_subcommand("list", "Show each message: number, size, sender, recipients, age (as qmail-qread)");
    add_common_options(*list, prog.common, opt_json);
    list->callback([&prog] { prog.action = [&prog] { return run_queue_list(prog); }; });

    CLI::App* flush = q->add_subcommand("flush", "Make the running qmail-send retry every deferred delivery now (SIGALRM)");
    add_common_options(*flush, prog.common, opt_json | opt_quiet);
    flush->callback([&prog] { prog.action = [&prog] { return run_queue_flush(prog); }; });

    set_footers(q,
                "Exit status: 0 done; 64 usage; 69 (flush) no qmail-send is running; 66 no queue (qmailctl queue init makes one) or it cannot be read;\n"
                "73/77 the queue cannot be made or given its owners; 75 locked. See qmailctl(8).");
}

}  // namespace qv::qmailctl
