// Internal to lab/config: a directed graph over named nodes whose edges are written somewhere in a
// playbook (priority rules "a before b", a service's inputs), with the one cycle check the loaders
// share and each node's depth.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::config::internal {

// How a cycle is told: "<title>: <noun>'a' <link> <noun>'b' (<at> at f:l:c)...; <expected>".
struct CycleWording {
  std::string title;     // "priorities form a cycle"
  std::string noun;      // prefixes each node: "group " or ""
  std::string link;      // "before"
  std::string at;        // what an edge's location is: "rule"
  std::string expected;  // "expected an order in which something comes first"
};

class DependencyGraph {
 public:
  explicit DependencyGraph(std::vector<std::string> names)
      : names_(std::move(names)), edges_(names_.size()) {}

  void Add(size_t from, size_t to, const SourceLocation& written_at) {
    edges_[from].push_back({to, written_at});
  }

  // An error naming one cycle, located at the edge of the cycle written last in the file; OK if
  // there is none.
  Status CheckAcyclic(const CycleWording& words) const {
    std::vector<int> color(names_.size(), 0);          // 0 new, 1 on the path, 2 done
    std::vector<std::pair<size_t, const Edge*>> path;  // node, edge taken into it
    std::vector<std::pair<size_t, const Edge*>> cycle;
    std::function<bool(size_t, const Edge*)> visit = [&](size_t n, const Edge* via) {
      color[n] = 1;
      path.emplace_back(n, via);
      for (const Edge& e : edges_[n]) {
        if (color[e.to] == 1) {
          size_t i = 0;
          while (path[i].first != e.to) ++i;
          cycle.assign(path.begin() + static_cast<std::ptrdiff_t>(i), path.end());
          cycle.emplace_back(e.to, &e);
          return true;
        }
        if (color[e.to] == 0 && visit(e.to, &e)) return true;
      }
      color[n] = 2;
      path.pop_back();
      return false;
    };
    for (size_t n = 0; n < names_.size() && cycle.empty(); ++n) {
      if (color[n] == 0) visit(n, nullptr);
    }
    if (cycle.empty()) return Status::Ok();
    std::string text = words.noun + "'" + names_[cycle[0].first] + "'";
    SourceLocation last = cycle[1].second->written_at;
    for (size_t i = 1; i < cycle.size(); ++i) {
      const SourceLocation& at = cycle[i].second->written_at;
      text += " " + words.link + " " + words.noun + "'" + names_[cycle[i].first] + "' (" +
              words.at + " at " + at.ToString() + ")";
      if (at.line > last.line || (at.line == last.line && at.column > last.column)) last = at;
    }
    return Status::AtLocation(last, words.title + ": " + text + "; " + words.expected);
  }

  // Longest chain of nodes ahead of each node (0 = nothing comes before it). Acyclic only.
  std::vector<int> Ranks() const {
    std::vector<int> rank(names_.size(), -1);
    std::vector<std::vector<size_t>> before(names_.size());
    for (size_t n = 0; n < names_.size(); ++n) {
      for (const Edge& e : edges_[n]) before[e.to].push_back(n);
    }
    std::function<int(size_t)> rank_of = [&](size_t n) {
      if (rank[n] >= 0) return rank[n];
      int r = 0;
      for (size_t p : before[n]) r = std::max(r, rank_of(p) + 1);
      return rank[n] = r;
    };
    for (size_t n = 0; n < names_.size(); ++n) rank_of(n);
    return rank;
  }

 private:
  struct Edge {
    size_t to;
    SourceLocation written_at;
  };
  std::vector<std::string> names_;
  std::vector<std::vector<Edge>> edges_;
};

}  // namespace chaoslab::config::internal
