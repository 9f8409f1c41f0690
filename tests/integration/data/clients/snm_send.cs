// snm_send.cs - a real System.Net.Mail client (mono's, from Debian's
// mono-runtime; compiled by the test with mcs) for
// tests/integration/test_clients.py.  It sends one message the way an
// application migrated from IIS does: through SMTP with EnableSsl
// (STARTTLS) and a NetworkCredential, through plain SMTP from a host the
// server lets relay (the usual IIS set-up for a web server), or into a
// pickup directory (SmtpDeliveryMethod.SpecifiedPickupDirectory).
//
//   mono snm_send.exe smtps HOST PORT USER PASSWORD
//   mono snm_send.exe smtp HOST PORT
//   mono snm_send.exe pickup DIRECTORY
//
// Exit status 0 when Send returned, 1 with the exception on stderr.
using System;
using System.Net;
using System.Net.Mail;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

class SnmSend {
	static MailMessage Message()
	{
		var m = new MailMessage();
		m.From = new MailAddress("noreply@contoso.example",
		    "Contoso Web Shop");
		m.To.Add(new MailAddress("customer@remote.example",
		    "Jane Customer"));
		m.CC.Add("orders@remote.example");
		m.Bcc.Add("audit@remote.example");
		m.Subject = "Your order 10442";
		m.Body = "Hello Jane,\r\n\r\nyour order has shipped.\r\n" +
		    ".signature: Contoso\r\n";
		return m;
	}

	static int Main(string[] args)
	{
		try {
			var c = new SmtpClient();
			if (args[0] == "pickup") {
				c.DeliveryMethod =
				    SmtpDeliveryMethod.SpecifiedPickupDirectory;
				c.PickupDirectoryLocation = args[1];
			} else if (args[0] == "smtp") {
				c.Host = args[1];
				c.Port = int.Parse(args[2]);
			} else {
				// the test's certificate is self-signed
				ServicePointManager.ServerCertificateValidationCallback =
				    (s, cert, chain, errors) => true;
				// as .NET 4.5 applications set it: the default
				// (SSL 3, TLS 1.0) is refused by any current server
				ServicePointManager.SecurityProtocol =
				    SecurityProtocolType.Tls12;
				c.Host = args[1];
				c.Port = int.Parse(args[2]);
				c.EnableSsl = true;
				c.Credentials = new NetworkCredential(args[3],
				    args[4]);
			}
			c.Send(Message());
			return 0;
		} catch (Exception e) {
			Console.Error.WriteLine(e.ToString());
			return 1;
		}
	}
}
