// Storage files. The page says so plainly when the marketplace has no storage API.
import { $ } from "/dashboard/static/js/ui.js";
import "/dashboard/static/js/wallet.js";

if ($("#storage-root").dataset.available === "true") {
  $("#storage-body").textContent = "Storage listing is not wired up in this dashboard version yet.";
}
