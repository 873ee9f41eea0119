// Card payment with Stripe's Payment Element. Loaded only on the payment page, whose
// Content-Security-Policy allows js.stripe.com; the card details never reach the portal.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("payment-form");
  if (!form) return;
  const error = document.getElementById("payment-error");
  if (typeof window.Stripe !== "function" || !form.dataset.publishableKey) {
    error.textContent = form.dataset.unavailable || "Card payments are not available at the moment.";
    document.getElementById("payment-submit").disabled = true;
    return;
  }
  const stripe = window.Stripe(form.dataset.publishableKey, { locale: form.dataset.locale });
  const elements = stripe.elements({ clientSecret: form.dataset.clientSecret });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    document.getElementById("payment-submit").disabled = true;
    const result = await stripe.confirmPayment({
      elements,
      confirmParams: { return_url: form.dataset.returnUrl },
    });
    if (result.error) {
      error.textContent = result.error.message;
      document.getElementById("payment-submit").disabled = false;
    }
  });
});
