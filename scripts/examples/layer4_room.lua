-- Is there room for order to appear in layer 4? The untrained unet's
-- layer 4 (and layer4_pre, before its block's label embedding), read by
-- bd.represent at several inputs and timesteps, measured as phases.lua
-- measures it (manifold metric, min over x and y). When an untrained net is
-- already as ordered as an ideal code (1.00), training cannot be shown to
-- order it: phases.lua then reports "no room between floor and ceiling".
--
--   bdrun scripts/examples/layer4_room.lua [seeds=1,2,3] [ts=500,800,950]
--
-- The net is phases.lua's quick scale (16x16, width 8, emb 64, attention in
-- down1..3, up1, up2); labels on a 1 px grid (256); inputs "bump" (each
-- label's clean bump noised to t with one shared noise image) and "noise"
-- (the shared noise alone: labels differ only through the conditioning).
local cfg = bd.config{ size = 16, width = 8, emb = 64, spacing = 0.316, rep_step = 1.0,
                       attention_blocks = "down1,down2,down3,up1,up2", seeds = "1,2,3",
                       ts = "500,800,950" }
local function numbers(text)
  local out = {}
  for token in tostring(text):gmatch("[^,%s]+") do out[#out + 1] = assert(tonumber(token)) end
  return out
end
local grid = bd.data.grid{ size = cfg.size, step = cfg.rep_step }
local data = bd.data.bumps{ size = cfg.size, sigma = 1.0, dx = cfg.spacing, dy = cfg.spacing }
local pca = bd.metric("manifold", { method = "pca", seed = 1 })
local umap = bd.metric("manifold", { method = "umap", dims = 3, seed = 1 })

print("input  t    seed  layer4: UMAP R^2  PCA R^2  kNN R^2  rank corr. | layer4_pre: PCA  kNN"
      .. "  rank corr.")
for _, input in ipairs{ "bump", "noise" } do
  for _, t in ipairs(numbers(cfg.ts)) do
    for _, seed in ipairs(numbers(cfg.seeds)) do
      local model = bd.model("unet", { width = cfg.width, size = cfg.size, emb = cfg.emb,
                                       attention_blocks = cfg.attention_blocks, seed = seed })
      local r = bd.represent(model, grid, { taps = { "layer4", "layer4_pre" }, t = t,
                                            seed = seed, input = input, data = data })
      local m, u = pca(r.taps.layer4, grid.labels), umap(r.taps.layer4, grid.labels)
      local p = pca(r.taps.layer4_pre, grid.labels)
      print(string.format("%-6s %-4d %-5d %16.2f %8.2f %8.2f %11.2f | %15.2f %4.2f %11.2f", input,
                          t, seed, math.min(u.r2_x, u.r2_y), math.min(m.r2_x_pca, m.r2_y_pca),
                          math.min(m.knn_r2_x, m.knn_r2_y), m.dist_rank_corr,
                          math.min(p.r2_x_pca, p.r2_y_pca), math.min(p.knn_r2_x, p.knn_r2_y),
                          p.dist_rank_corr))
    end
  end
end
