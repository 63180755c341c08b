// Images as the dashboard shows them. A provider's images list holds the images it offers
// and, after them, the digests (sha256:<hex>) of renters' own images it holds in its cache;
// a quote's image_pull says which chosen providers must pull a renter's image first.

const RENTER_IMAGE = /^sha256:[0-9a-f]{64}$/;

/** The images a provider offers (renters' cached images left out). */
export function offeredImages(images) {
  return images.filter((i) => !RENTER_IMAGE.test(i));
}

/** "dcloud/busybox:1, dcloud/python:3.11; 12 renter images cached" (never 100 digests). */
export function imagesSummary(images) {
  const offered = offeredImages(images);
  const cached = images.length - offered.length;
  const parts = offered.length ? [offered.join(", ")] : [];
  if (cached) parts.push(`${cached} renter image${cached === 1 ? "" : "s"} cached`);
  return parts.join("; ") || "none";
}

function seconds(s) {
  if (s < 1) return "under a second";
  if (s < 90) return `about ${Math.round(s)} s`;
  return `about ${Math.round(s / 60)} min`;
}

/**
 * One sentence on a renter's image for an estimate: who must pull it and for how long,
 * or that the chosen providers already hold it. Empty for images providers offer.
 */
export function imagePullText(image, pull, chosen) {
  if (!image.includes("@")) return "";
  if (!pull) {
    return chosen > 1
      ? "Every chosen provider already holds your image: no pull before the start."
      : "The provider already holds your image: no pull before the start.";
  }
  const mb = (pull.bytes / 1e6).toLocaleString("en", { maximumFractionDigits: pull.bytes < 1e7 ? 1 : 0 });
  const who = chosen === 1 ? "The provider" : pull.providers.length < chosen ? `${pull.providers.length} of the ${chosen} providers` : "Every chosen provider";
  const size = pull.size_assumed ? `${mb} MB (size not given, assumed)` : `${mb} MB`;
  return (
    `${who} must pull your image first: ${size}, ${seconds(pull.seconds)}. ` +
    "The ranking charged the pull: providers holding the image come first unless another is enough nearer or on cheaper power."
  );
}
