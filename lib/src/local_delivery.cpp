// Local delivery for virtual domains. See local_delivery.hpp.
#include "qvmail/local_delivery.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>

#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/group_sync.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/maildir.hpp"
#include "qvmail/message.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/process.hpp"
#include "qvmail/queue_client.hpp"
#include "qvmail/recipient.hpp"
#include "qvmail/remote.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"
#include "qvmail/user.hpp"

namespace qv {

namespace fs = std::filesystem;

const char* to_string(DeliveryOutcome::Kind k) noexcept {
    switch (k) {
        case DeliveryOutcome::success: return "success";
        case DeliveryOutcome::temporary: return "deferral";
        case DeliveryOutcome::permanent: return "failure";
    }
    return "?";
}

namespace {

constexpr std::size_t kFilterReadLimit = 16u << 20;  // the filters read at most this much of a message
constexpr int kProgramTimeout = 3600;               // a delivery program is killed after an hour

DeliveryOutcome ok(std::string text) {
    return {DeliveryOutcome::success, std::move(text)};
}
DeliveryOutcome temporary(std::string text) {
    return {DeliveryOutcome::temporary, std::move(text)};
}
DeliveryOutcome permanent(std::string text) {
    return {DeliveryOutcome::permanent, std::move(text)};
}

// The outcome of a queue submission's text ("" queued, "D..." or "Z...").
DeliveryOutcome queued_outcome(const std::string& verdict, const std::string& what) {
    if (verdict.empty()) return ok(what);
    std::string text = verdict.substr(1);
    return verdict[0] == 'D' ? permanent(what + " failed: " + text) : temporary(what + " failed: " + text);
}

struct Delivery {
    const Paths& paths;
    const std::function<Store&()>& store;
    const LocalMessage& m;
    const LocalOptions& o;
    std::string address;  // local@domain, lower case: the Delivered-To line
    std::string local, domain;
    std::optional<bool> looping_;  // the message's Delivered-To lines read once, however many lines use it

    // Whether the message already carries this address's Delivered-To line.
    bool looping() {
        if (!looping_) looping_ = has_delivered_to(m.fd, m.offset, address);
        return *looping_;
    }
    static DeliveryOutcome loop_failure() {
        return permanent("This message is looping: it already has my Delivered-To line. (#5.4.6)");
    }

    std::string head() const {
        return "Return-Path: <" + m.sender + ">\nDelivered-To: " + address + "\n";
    }

    // Into a Maildir (or a folder of it), durably, within the quota when one is given (kept in the
    // maildirsize of `root`, the mailbox's Maildir, for its folders too).
    DeliveryOutcome to_maildir(const fs::path& maildir, const std::optional<Quota>& quota, fs::path root = {}) {
        if (root.empty()) root = maildir;
        if (looping()) return loop_failure();
        try {
            if (quota && !quota_unlimited(*quota)) {
                // over: counted again before refusing (the file may have drifted), as IndiMail does
                if (!fits_quota(*quota, maildir_usage(root, *quota), m.size) &&
                    !fits_quota(*quota, maildir_usage(root, *quota, true), m.size))
                    return temporary("The mailbox of " + address + " is over its quota. (#4.2.2)");
            }
            MaildirFile f = maildir_write(maildir, head(), m.fd, m.offset, o.group == nullptr);
            try {
                if (o.group) o.group->sync(f.dir, f.dev);  // the data
                fs::path name = maildir_publish(f, o.group == nullptr);
                if (o.group && o.unsynced_names)  // its name in new/: the caller's to flush
                    o.unsynced_names->push_back(f.dir);
                else if (o.group)
                    o.group->sync(f.dir);
                std::string where = "delivered to " + name.parent_path().parent_path().string();
                if (quota && !quota_unlimited(*quota)) {
                    try {  // delivered: a maildirsize that cannot be updated is counted again later
                        maildirsize_add(root, static_cast<std::int64_t>(f.size), 1);
                    } catch (const std::exception& e) {
                        where += " (maildirsize not updated: " + std::string(e.what()) + ")";
                    }
                }
                return ok(where);
            } catch (...) {
                maildir_discard(f);
                throw;
            }
        } catch (const std::exception& e) {
            return temporary(std::string(e.what()) + " (#4.3.0)");
        }
    }

    DeliveryOutcome forward(const std::vector<std::string>& to) {
        if (looping()) return loop_failure();
        std::string list;
        for (const auto& t : to) list += (list.empty() ? "" : ", ") + t;
        return queued_outcome(inject_copy(paths, m, "Delivered-To: " + address + "\n", to), "forwarded to " + list);
    }

    // Runs a program with the message on its descriptor 0 (a descriptor of its own, at the message's
    // start); the outcome when it could not be run.
    std::optional<DeliveryOutcome> run_on_message(ProgramRun& run, ProgramResult& r) {
        int fd = ::dup(m.fd);
        if (fd < 0 || ::lseek(fd, m.offset, SEEK_SET) < 0) {
            int e = errno;
            if (fd >= 0) ::close(fd);
            return temporary(std::string("cannot read the message: ") + std::strerror(e) + " (#4.3.0)");
        }
        run.stdin_fd = fd;
        try {
            r = run_program(run);
        } catch (const std::exception& e) {
            ::close(fd);
            return temporary(e.what());
        }
        ::close(fd);
        return std::nullopt;
    }

    // |command, with qmail-local's environment; exit 99 is reported as `stop`.
    DeliveryOutcome program(const std::string& command, const fs::path& cwd, bool* stop) {
        ProgramRun run;
        run.argv = {"/bin/sh", "-c", command};
        run.env = environment_with({{"SENDER", m.sender},
                                    {"RECIPIENT", address},
                                    {"LOCAL", local},
                                    {"HOST", domain},
                                    {"EXT", local},
                                    {"DTLINE", "Delivered-To: " + address + "\n"},
                                    {"RPLINE", "Return-Path: <" + m.sender + ">\n"}});
        run.cwd = cwd;
        run.timeout = kProgramTimeout;
        run.as = o.program_owner;
        ProgramResult r;
        if (auto failed = run_on_message(run, r)) return *failed;
        std::string out = r.output;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        std::string what = "program " + command + (out.empty() ? "" : ": " + out);
        if (r.timed_out) return temporary(what + ": timed out (#4.3.0)");
        switch (r.exit_code()) {
            case 0: return ok(what);
            case 99:
                if (stop) *stop = true;
                return ok(what);
            case 64: case 65: case 70: case 76: case 77: case 78: case 100: case 112:  // qmail-command(8)
                return permanent(what);
            default: return temporary(what);
        }
    }

    // The lines of an alias or of a hand-made .qmail-default, as qmail-local runs them.
    DeliveryOutcome lines(const std::vector<std::string>& ls, const fs::path& cwd) {
        if (looping()) return loop_failure();  // before any line, as qmail-local checks
        std::vector<std::string> forwards;
        std::string done;
        for (const auto& raw : ls) {
            std::string_view line(raw);
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
            DotQmailLine l = classify_dot_qmail_line(line);
            if (l.kind == DotQmailLine::nothing) continue;
            if (l.kind == DotQmailLine::forward) {
                forwards.emplace_back(l.text);
                continue;
            }
            DeliveryOutcome r;
            bool stop = false;
            if (l.kind == DotQmailLine::program) {
                r = program(std::string(l.text), cwd, &stop);
            } else {
                if (line.back() != '/')
                    return temporary("mbox delivery (" + std::string(line) + ") is not supported: end a Maildir with '/'. (#4.3.0)");
                fs::path dir = line[0] == '/' ? fs::path(line) : cwd / line;
                r = to_maildir(dir, std::nullopt);
            }
            if (r.kind != DeliveryOutcome::success) return r;
            done += (done.empty() ? "" : "; ") + r.text;
            if (stop) break;
        }
        if (!forwards.empty()) {
            DeliveryOutcome r = forward(forwards);
            if (r.kind != DeliveryOutcome::success) return r;
            done += (done.empty() ? "" : "; ") + r.text;
        }
        if (done.empty()) return permanent("the alias " + address + " has no delivery line. (#5.1.1)");
        return ok(done);
    }

    // The domain's handler for an address nobody has.
    DeliveryOutcome handler(const Domain& d, const std::string& text) {
        Handler h;
        try {
            h = parse_handler(text);
        } catch (const std::exception& e) {
            return temporary("the handler of " + d.name + " in .qmail-default is not usable: " + e.what() + " (#4.3.5)");
        }
        switch (h.kind) {
            case HandlerKind::discard: return ok("no mailbox " + address + ": discarded (the domain's handler is delete)");
            case HandlerKind::bounce:
                // an inactive mailbox (vdeloldusers, vmoduser -n) says so, as IndiMail's vdelivermail does
                if (store().get_inactive_user(d.ref(), local))
                    return permanent("account " + address + " is inactive. (#5.1.3)");
                return permanent("no account " + address + " here by that name. (#5.1.1)");
            case HandlerKind::maildir: {
                fs::path dir(h.text);
                if (!is_maildir(dir) && is_maildir(dir / "Maildir")) dir /= "Maildir";
                return to_maildir(dir, std::nullopt);
            }
            case HandlerKind::forward: return forward({h.text});
            case HandlerKind::route: return route(h.text);
        }
        return temporary("unknown handler (#4.3.5)");
    }

    // domain:host:port: qmail-remote delivers it there, with SMTPROUTE set to the handler.
    DeliveryOutcome route(const std::string& smtproute) {
        ProgramRun run;
        run.argv = {o.remote_program.empty() ? mta_program(paths, "qmail-remote").string() : o.remote_program, domain,
                    m.sender, "", std::to_string(m.size), address};
        run.env = environment_with({{"SMTPROUTE", smtproute}, {"QMAILLOCAL", std::nullopt}});
        run.timeout = kProgramTimeout;
        run.as = o.remote_owner;
        ProgramResult r;
        if (auto failed = run_on_message(run, r)) return *failed;
        SpawnResult v = fold_remote_output(r.output, r.status);
        std::string text = "routed to " + smtproute + ": " + v.text;
        if (v.code == 'K') return ok(text);
        return v.code == 'D' ? permanent(text) : temporary(text);
    }

    DeliveryOutcome mailbox(const Domain& d, const std::string& name, const std::optional<UserRecord>& user) {
        if (!user) return temporary("the mailbox " + name + "@" + d.name + " went away meanwhile (#4.3.0)");
        // a mailbox of another host sharing the database: handed to that host over SMTP, which delivers
        // it (its filters included)
        MailboxPlace place = mailbox_place(paths, store(), d.ref(), name);
        if (!place.local) {
            if (!place.where)
                return temporary("the mailbox " + address + " lives on host " + place.host +
                                 ", which has not registered its address (its qmailctl sync does, from its "
                                 "control/clusteraddress) (#4.3.0)");
            const std::string& a = place.where->address;
            std::string route_to = d.name + ":" + (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" +
                                   std::to_string(place.where->smtp_port);
            DeliveryOutcome r = route(route_to);
            r.text = "on host " + place.host + ": " + r.text;
            return r;
        }
        fs::path maildir = fs::path(user->dir) / "Maildir";
        std::optional<Quota> quota = try_parse_quota(user->quota);
        if (!quota) return temporary("the quota of " + address + " (" + user->quota + ") is not readable (#4.3.5)");
        const bool filtering = o.filters || (d.delivery && d.delivery->vfilter);
        if (!filtering) return to_maildir(maildir, quota);

        std::string raw = read_message(m, kFilterReadLimit);
        Message msg = parse_message(raw);
        FilterEngine engine(filter_chain(store(), d, name, maildir), HeaderList::load(paths));
        FilterDecision fd = engine.evaluate(msg, {address});
        if (!fd.matched) return to_maildir(maildir, quota);
        std::string rule = "filter rule " + std::to_string(fd.rule.number) + " of " + fd.address;
        DeliveryOutcome r = ok(rule + ": " + describe_decision(fd));
        if (fd.delivery == FilterDecision::Delivery::folder) {
            fs::path folder;
            try {
                folder = maildir_folder(maildir, fd.folder, o.group == nullptr);
            } catch (const std::exception& e) {
                return temporary(std::string(e.what()) + " (#4.3.0)");
            }
            r = to_maildir(folder, quota, maildir);
        } else if (fd.delivery == FilterDecision::Delivery::inbox) {
            r = to_maildir(maildir, quota);
        }
        if (r.kind != DeliveryOutcome::success) return r;
        if (fd.action.forward == BounceAction::address) {
            DeliveryOutcome f = queued_outcome(inject_copy(paths, m, "Delivered-To: " + address + "\n", {fd.action.target}),
                                               "a copy to " + fd.action.target);
            if (f.kind != DeliveryOutcome::success) return f;
            r.text += "; " + f.text;
        } else if (fd.action.forward == BounceAction::program) {
            DeliveryOutcome f = program(fd.action.target, user->dir, nullptr);
            if (f.kind != DeliveryOutcome::success) return f;
            r.text += "; " + f.text;
        }
        if (fd.action.bounce)
            return permanent("The message was refused by " + rule + " (" + fd.rule.name + "). (#5.7.1)");
        return r;
    }
};

}  // namespace

std::string read_message(const LocalMessage& m, std::size_t limit) {
    std::string out;
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(m.size, limit));
    out.resize(want);
    std::size_t have = 0;
    while (have < want) {
        ssize_t n = ::pread(m.fd, out.data() + have, want - have, m.offset + static_cast<off_t>(have));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(Exit::ioerr, std::string("cannot read the message: ") + std::strerror(errno));
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    out.resize(have);
    return out;
}

std::string inject_copy(const Paths& paths, const LocalMessage& m, std::string_view head,
                        const std::vector<std::string>& recipients, const std::vector<std::string>* env) {
    try {
        auto q = QueueSubmission::open(paths, env);
        q->write(head);
        char buf[65536];
        off_t at = m.offset;
        for (;;) {
            ssize_t n = ::pread(m.fd, buf, sizeof buf, at);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                q->fail();
                break;
            }
            if (n == 0) break;
            q->write(std::string_view(buf, static_cast<std::size_t>(n)));
            at += n;
        }
        return q->close(Envelope{m.sender, recipients});
    } catch (const QueueError& e) {
        return (qq::permanent(e.code()) ? "D" : "Z") + std::string(e.what());
    } catch (const std::exception& e) {
        return "Z" + std::string(e.what());
    }
}

DeliveryOutcome deliver_virtual(const Paths& paths, const std::function<Store&()>& store, std::string_view local_in,
                                std::string_view domain_in, const LocalMessage& m, const LocalOptions& o) {
    std::string local = ascii_lower(local_in.empty() ? std::string_view("postmaster") : local_in);
    std::string domain = ascii_lower(domain_in);
    Delivery dl{paths, store, m, o, local + "@" + domain, local, domain, std::nullopt};
    try {
        auto d = find_domain(paths, domain);
        if (!d) return permanent("No such domain " + domain + ". (#5.1.2)");
        VirtualRecipient who = resolve_virtual_recipient(store, *d, local, o.qmail_ext);
        switch (who.kind) {
            case VirtualRecipient::mailbox: return dl.mailbox(*d, who.detail, who.user);
            case VirtualRecipient::alias: {
                fs::path file = d->dir / qmail_alias_file(who.detail);
                std::vector<std::string> ls;
                if (path_exists(file)) {
                    LineReader in(file);
                    std::string_view line;
                    while (in.next(line)) ls.emplace_back(line);
                } else {
                    ls = store().alias_lines(d->ref(), who.detail);
                }
                return dl.lines(ls, d->dir);
            }
            case VirtualRecipient::handler:
            case VirtualRecipient::nobody: break;
        }
        if (o.handler) return dl.handler(*d, *o.handler);
        if (d->delivery) return dl.handler(*d, d->delivery->handler);
        fs::path qd = d->dir / ".qmail-default";
        if (!path_exists(qd)) return permanent("Sorry, no mailbox here by that name. (#5.1.1)");
        LineReader in(qd);
        std::vector<std::string> ls;
        std::string_view line;
        while (in.next(line)) ls.emplace_back(line);
        return dl.lines(ls, d->dir);
    } catch (const std::exception& e) {
        return temporary(std::string(e.what()) + " (#4.3.0)");
    }
}

}  // namespace qv
